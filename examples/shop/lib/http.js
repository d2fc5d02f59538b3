// A tiny JSON HTTP server: routes are "METHOD /path" with :params.
'use strict'
const http = require('node:http')

function serve (port, routes) {
  const table = Object.entries(routes).map(([key, handler]) => {
    const [method, pattern] = key.split(' ')
    const names = []
    const re = new RegExp('^' + pattern.replace(/:(\w+)/g, (_, n) => { names.push(n); return '([^/]+)' }) + '$')
    return { method, re, names, handler }
  })
  const server = http.createServer(async (req, res) => {
    const reply = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    try {
      const url = new URL(req.url, 'http://localhost')
      for (const r of table) {
        const m = r.method === req.method && url.pathname.match(r.re)
        if (!m) continue
        const params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1])]))
        let body = ''
        for await (const chunk of req) body += chunk
        const [status, out] = await r.handler({ params, body: body ? JSON.parse(body) : undefined })
        return reply(status, out)
      }
      reply(404, { error: 'not found' })
    } catch (e) {
      reply(400, { error: e.message })
    }
  })
  return new Promise(resolve => server.listen(port, () => resolve(server)))
}

module.exports = { serve }
