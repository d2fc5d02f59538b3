// A service's state in a JSON file, replaced atomically (write, fsync, rename) after
// each change. With the set of order ids already applied, a message delivered again
// after a crash (its offset not yet committed) changes nothing: no stock is
// decremented twice.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

function open (service, initial) {
  const dir = process.env.DATA_DIR || path.join(__dirname, '..', 'data')
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, `${service}.json`)
  const state = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : initial()
  state.applied = state.applied || {}
  return {
    state,
    /** Whether this event (by id) was already applied. */
    seen: id => Object.prototype.hasOwnProperty.call(state.applied, id),
    /** Apply `change` for event `id` once, and persist. */
    apply (id, change) {
      if (this.seen(id)) return false
      change(state)
      state.applied[id] = true
      const tmp = `${file}.tmp`
      const fd = fs.openSync(tmp, 'w')
      fs.writeSync(fd, JSON.stringify(state))
      fs.fsyncSync(fd)
      fs.closeSync(fd)
      fs.renameSync(tmp, file)
      return true
    }
  }
}

module.exports = { open }
