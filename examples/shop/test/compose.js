// docker-compose.yml as Docker Compose itself resolves it (`docker-compose config`,
// which needs no Docker engine): the binaries are in COMPOSE_BINS, colon separated,
// fetched by examples/shop/run-tests.sh. And a broker service turned into a plain
// process, so that the tests run the very topology compose would.
'use strict'
const { execFileSync } = require('node:child_process')
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..', '..')

/** The Docker Compose binaries to resolve the file with; the first is the newest. */
function composeBinaries () {
  const bins = (process.env.COMPOSE_BINS || '').split(':').filter(Boolean)
  if (!bins.length) throw new Error('COMPOSE_BINS names no docker-compose binary: run examples/shop/run-tests.sh, which fetches them')
  return bins
}

/** The project `bin` would run: `profiles` as given with --profile, none → .env's default. */
function resolve (bin, profiles = []) {
  const env = { ...process.env }
  delete env.COMPOSE_PROFILES // the project's .env decides the default, as for a user
  delete env.COMPOSE_FILE
  const args = [...profiles.flatMap(p => ['--profile', p]), 'config', '--format', 'json']
  return JSON.parse(execFileSync(bin, args, { cwd: ROOT, env, encoding: 'utf8' }))
}

/** The services that are brokers (those built from the repository's Dockerfile). */
function brokers (project) {
  return Object.entries(project.services).filter(([, s]) => s.build && path.resolve(ROOT, s.build.context) === ROOT)
}

/** The host port `service` publishes for container port `target`. */
function published (service, target) {
  const port = (service.ports || []).find(p => p.target === target)
  return port && Number(port.published)
}

/**
 * Broker `name` of `project` as a process on this machine: its environment, with
 * every address compose gives it (its listeners, its service name, the host ports it
 * publishes, its console) moved to `at` = { host, internal, external, http }, its
 * data directory to `dataDir`, and its properties file (bind-mounted) rewritten by
 * `rewrite` into `configDir`. Anything compose-specific left over is an error.
 */
function asProcess (project, name, at, dataDir, configDir, rewrite) {
  const fs = require('node:fs')
  const s = project.services[name]
  const moved = [
    ['0.0.0.0:29092', `${at.host}:${at.internal}`],
    [`${name}:29092`, `${at.host}:${at.internal}`],
    ['0.0.0.0:9092', `${at.host}:${at.external}`],
    [`localhost:${published(s, 9092)}`, `${at.host}:${at.external}`],
    ['0.0.0.0:9644', `${at.host}:${at.http}`]
  ]
  const env = {}
  for (const [key, value] of Object.entries(s.environment || {})) {
    let v = moved.reduce((text, [from, to]) => text.split(from).join(to), value)
    const mount = (s.volumes || []).find(m => v === m.target || v.startsWith(`${m.target}/`))
    if (mount && mount.type === 'volume') v = path.join(dataDir, path.relative(mount.target, v))
    if (mount && mount.type === 'bind') {
      const file = path.join(configDir, `${name}-${path.basename(mount.source)}`)
      fs.writeFileSync(file, rewrite(fs.readFileSync(mount.source, 'utf8')))
      v = file
    }
    env[key] = v
  }
  const leftover = Object.entries(env).filter(([, v]) => /0\.0\.0\.0|localhost|\b(strom|strom-\d|etcd-\d|kafka):\d|^\/(var|etc)\//.test(v))
  if (leftover.length) throw new Error(`${name}: not moved to this machine: ${JSON.stringify(leftover)}`)
  return env
}

/**
 * Broker `name`'s healthcheck (`CMD strom …` against its internal listener) as a
 * command for this machine: [program, args], with strom at `strom` and the broker at
 * `at` (see asProcess).
 */
function healthcheckAsProcess (project, name, at, strom) {
  const [kind, program, ...args] = project.services[name].healthcheck.test
  if (kind !== 'CMD' || program !== 'strom') throw new Error(`${name}: a healthcheck that is not CMD strom`)
  return [strom, args.map(a => a === 'localhost:29092' ? `${at.host}:${at.internal}` : a)]
}

module.exports = { ROOT, composeBinaries, resolve, brokers, published, asProcess, healthcheckAsProcess }
