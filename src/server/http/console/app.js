// strom's web console: one page, no build step. Each view has its own URL
// (/, /topics, /topics/NAME, /groups, /groups/ID, /trace); the JSON API is
// under /api. Changing requests carry the X-Strom-Console header.
'use strict';

const view = document.getElementById('view');
let info = { readOnly: false };
// What the current view must stop when another is shown (live streams, timers).
let cleanup = [];

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function bytes(n) {
  if (n == null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + units[i];
}

function when(ms) {
  return ms == null || ms < 0 ? '' : new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

function toast(message, bad) {
  const t = document.getElementById('toast');
  t.textContent = message;
  t.className = bad ? 'bad' : 'good';
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

async function api(path, options = {}) {
  const opts = { ...options, headers: { ...(options.headers || {}) } };
  if (opts.method && opts.method !== 'GET') opts.headers['X-Strom-Console'] = '1';
  if (opts.body !== undefined && typeof opts.body !== 'string') {
    opts.body = JSON.stringify(opts.body);
    opts.headers['Content-Type'] = 'application/json';
  }
  const r = await fetch('/api' + path, opts);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: text }; }
  if (!r.ok) throw new Error((data && data.error) || r.statusText);
  return data;
}

function go(path) {
  history.pushState(null, '', path);
  route();
}

document.addEventListener('click', e => {
  const a = e.target.closest('a[data-link]');
  if (a && !e.ctrlKey && !e.metaKey && a.origin === location.origin) {
    e.preventDefault();
    go(a.pathname + a.search);
  }
});
window.addEventListener('popstate', route);

async function route() {
  cleanup.forEach(f => f());
  cleanup = [];
  const path = decodeURIComponent(location.pathname);
  document.querySelectorAll('nav a').forEach(a => {
    const p = a.getAttribute('href');
    a.classList.toggle('active', p === '/' ? path === '/' : path.startsWith(p));
  });
  try {
    if (path === '/' || path === '') await overview();
    else if (path === '/topics') await topics();
    else if (path.startsWith('/topics/')) await topic(path.slice('/topics/'.length));
    else if (path === '/groups') await groups();
    else if (path.startsWith('/groups/')) await group(path.slice('/groups/'.length));
    else if (path === '/trace') await trace();
    else view.innerHTML = '<h1>Not found</h1>';
  } catch (e) {
    view.innerHTML = `<h1>Error</h1><p class="bad" id="error">${esc(e.message)}</p>`;
  }
}

// ---- overview ---------------------------------------------------------------

function sparkline(values, label, format) {
  const w = 240, h = 48, max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${(i / Math.max(1, values.length - 1)) * w},${h - (v / max) * (h - 4) - 2}`).join(' ');
  const last = values.length ? values[values.length - 1] : 0;
  return `<figure class="spark"><svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}"><polyline points="${pts}"/></svg>
    <figcaption>${esc(label)}: <b>${esc(format(last))}</b>/s (peak ${esc(format(max))}/s)</figcaption></figure>`;
}

async function overview() {
  const o = await api('/overview');
  const s = o.samples || [];
  const up = o.uptimeSeconds;
  view.innerHTML = `
    <h1>Broker ${esc(o.nodeId)}</h1>
    <section class="cards">
      <div><span>Cluster id</span><b>${esc(o.clusterId)}</b></div>
      <div><span>Version</span><b>strom ${esc(o.version)}</b></div>
      <div><span>Uptime</span><b>${Math.floor(up / 3600)}h ${Math.floor(up / 60) % 60}m ${up % 60}s</b></div>
      <div><span>Topics</span><b id="topic-count">${o.topics}</b></div>
      <div><span>Partitions</span><b>${o.partitions}</b></div>
      <div><span>Consumer groups</span><b>${o.groups}</b></div>
      <div><span>Connections</span><b id="connections">${o.connections}</b></div>
    </section>
    <h2>Throughput (last ${s.length} s)</h2>
    <section class="sparks">
      ${sparkline(s.map(x => x.bytesIn), 'Bytes in', bytes)}
      ${sparkline(s.map(x => x.bytesOut), 'Bytes out', bytes)}
      ${sparkline(s.map(x => x.messagesIn), 'Records in', n => String(n))}
      ${sparkline(s.map(x => x.requests), 'Requests', n => String(n))}
    </section>
    <h2>Listeners</h2>
    <table><tr><th>Name</th><th>Security protocol</th><th>Bound</th><th>Advertised</th></tr>
      ${o.listeners.map(l => `<tr><td>${esc(l.name)}</td><td>${esc(l.securityProtocol)}</td><td>${esc(l.bound)}</td><td>${esc(l.advertised)}</td></tr>`).join('')}
    </table>
    <h2>Connections by client software</h2>
    <table id="clients"><tr><th>Client software</th><th>Version</th><th>Connections</th></tr>
      ${o.clients.map(c => `<tr><td>${esc(c.software)}</td><td>${esc(c.version)}</td><td>${c.connections}</td></tr>`).join('') || '<tr><td colspan="3" class="muted">No client has named its software (ApiVersions v3+) on an open connection.</td></tr>'}
    </table>
    <details><summary>API versions served (${o.apis.length})</summary>
      <table><tr><th>API</th><th>Key</th><th>Versions</th></tr>
      ${o.apis.map(a => `<tr><td>${esc(a.name)}</td><td>${a.key}</td><td>${a.minVersion}–${a.maxVersion}</td></tr>`).join('')}
      </table></details>`;
  const timer = setTimeout(() => { if (location.pathname === '/') route(); }, 5000);
  cleanup.push(() => clearTimeout(timer));
}

// ---- topics -------------------------------------------------------------------

async function topics() {
  const list = await api('/topics');
  view.innerHTML = `
    <h1>Topics</h1>
    <form id="create-topic" class="write inline">
      <input name="name" placeholder="topic name" required>
      <input name="partitions" type="number" min="1" value="1" title="partitions">
      <input name="configs" placeholder="configs: key=value, …" size="30">
      <button>Create topic</button>
    </form>
    <table id="topics"><tr><th>Topic</th><th>Partitions</th><th>Size</th><th>Records</th><th>Records/s</th><th></th></tr>
    ${list.map(t => `<tr data-topic="${esc(t.name)}"><td><a href="/topics/${encodeURIComponent(t.name)}" data-link>${esc(t.name)}</a>${t.internal ? ' <span class="tag">internal</span>' : ''}</td>
      <td>${t.partitions}</td><td>${bytes(t.sizeBytes)}</td><td>${t.messages}</td><td>${t.messagesPerSec.toFixed(1)}</td>
      <td>${t.internal ? '' : `<button class="write danger" data-delete="${esc(t.name)}">Delete</button>`}</td></tr>`).join('')}
    </table>`;
  document.getElementById('create-topic').onsubmit = async e => {
    e.preventDefault();
    const f = e.target;
    const configs = {};
    f.configs.value.split(',').map(s => s.trim()).filter(Boolean).forEach(kv => {
      const i = kv.indexOf('=');
      if (i > 0) configs[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
    });
    try {
      await api('/topics', { method: 'POST', body: { name: f.name.value, partitions: +f.partitions.value, configs } });
      toast(`Created topic ${f.name.value}`);
      route();
    } catch (err) { toast(err.message, true); }
  };
  view.querySelectorAll('[data-delete]').forEach(b => b.onclick = async () => {
    const name = b.dataset.delete;
    if (!confirm(`Delete topic ${name} and all its records?`)) return;
    try {
      await api('/topics/' + encodeURIComponent(name), { method: 'DELETE' });
      toast(`Deleted topic ${name}`);
      route();
    } catch (err) { toast(err.message, true); }
  });
}

// How a record's bytes are shown: auto (JSON pretty-printed if it parses),
// text, or hex.
let format = 'auto';

function rawBytes(d) {
  if (!d) return null;
  if (d.text !== undefined) return new TextEncoder().encode(d.text);
  return Uint8Array.from(atob(d.base64), c => c.charCodeAt(0));
}

function show(d) {
  if (d == null) return '<span class="muted">null</span>';
  if (format === 'hex' || (format === 'auto' && d.base64 !== undefined)) {
    return '<code>' + Array.from(rawBytes(d), b => b.toString(16).padStart(2, '0')).join(' ') + '</code>';
  }
  const text = d.text !== undefined ? d.text : new TextDecoder().decode(rawBytes(d));
  if (format === 'auto') {
    try {
      const v = JSON.parse(text);
      if (typeof v === 'object' && v !== null) return `<pre class="json">${esc(JSON.stringify(v, null, 2))}</pre>`;
    } catch (_) { /* not JSON */ }
  }
  return `<span class="text">${esc(text)}</span>`;
}

function plain(d) {
  if (d == null) return null;
  return d.text !== undefined ? d.text : d.base64;
}

function recordRow(r, live) {
  const headers = r.headers.map(([k, v]) => `${esc(k)}=${esc(plain(v) ?? 'null')}`).join('<br>');
  return `<tr class="record${live ? ' live' : ''}" data-offset="${r.offset}" data-partition="${r.partition}">
    <td>${r.partition}</td><td>${r.offset}</td><td title="${esc(r.timestampType)}">${esc(when(r.timestamp))}</td>
    <td class="key">${show(r.key)}</td><td class="value">${show(r.value)}${r.truncated ? ' <span class="tag">cut at 256 KiB</span>' : ''}</td><td>${headers}</td></tr>`;
}

function download(name, type, text) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function csvCell(v) {
  const s = v == null ? '' : String(v);
  return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

async function topic(name) {
  const t = await api('/topics/' + encodeURIComponent(name));
  const parts = t.partitions;
  view.innerHTML = `
    <h1>Topic ${esc(t.name)} ${t.internal ? '<span class="tag">internal</span>' : ''}</h1>
    <p class="muted">Topic id ${esc(t.topicId)}</p>
    <h2>Partitions</h2>
    <table id="partitions"><tr><th>Partition</th><th>Leader</th><th>Log start</th><th>High watermark</th><th>Last stable</th><th>Size</th><th>Segments</th></tr>
    ${parts.map(p => `<tr><td>${p.partition}</td><td>${p.leader}</td><td>${p.logStartOffset}</td><td>${p.highWatermark}</td><td>${p.lastStableOffset}</td><td>${bytes(p.sizeBytes)}</td><td>${p.segments}</td></tr>`).join('')}
    </table>
    <h2>Messages</h2>
    <form id="browse" class="inline">
      <select name="partition"><option value="">all partitions</option>${parts.map(p => `<option>${p.partition}</option>`).join('')}</select>
      <select name="from"><option value="newest">newest</option><option value="earliest">earliest</option><option value="offset">from offset</option><option value="timestamp">from time</option></select>
      <input name="at" placeholder="offset or time (ISO / ms)" size="22">
      <input name="limit" type="number" min="1" max="1000" value="50" title="records">
      <input name="q" placeholder="search key, value, headers" size="24">
      <input name="scan" type="number" min="1" value="10000" title="most records a search scans">
      <button>Show</button>
      <select name="format" title="how to show keys and values"><option value="auto">auto (JSON)</option><option value="text">text</option><option value="hex">hex</option></select>
      <label><input type="checkbox" name="tail"> live tail</label>
      <button type="button" id="export-json">Export JSON</button>
      <button type="button" id="export-csv">Export CSV</button>
    </form>
    <p id="browse-status" class="muted"></p>
    <div id="notices"></div>
    <table id="records"><thead><tr><th>Partition</th><th>Offset</th><th>Timestamp</th><th>Key</th><th>Value</th><th>Headers</th></tr></thead><tbody></tbody></table>
    <button id="more" hidden>Next page</button>
    ${t.internal ? '' : `<h2 class="write">Produce a message</h2>
    <form id="produce" class="write stacked">
      <label>Partition <select name="partition"><option value="">by key hash (or in turn)</option>${parts.map(p => `<option>${p.partition}</option>`).join('')}</select></label>
      <label>Key <input name="key" placeholder="(none)"></label>
      <label>Value <textarea name="value" rows="4" placeholder='{"orderId": 1}'></textarea></label>
      <label>Headers <input name="headers" placeholder="key=value, …"></label>
      <button>Produce</button> <span id="produced" class="muted"></span>
    </form>`}
    <h2>Configs</h2>
    <table id="configs"><tr><th>Name</th><th>Value</th><th>Source</th><th></th></tr>
    ${t.configs.map(c => `<tr data-config="${esc(c.name)}"><td>${esc(c.name)}</td>
      <td>${c.readOnly ? esc(c.value) : `<input class="config-value" value="${esc(c.value)}" ${info.readOnly ? 'disabled' : ''}>`}</td>
      <td>${esc(c.source)}</td>
      <td>${c.readOnly ? '' : `<button class="write save-config">Save</button>${c.source === 'DYNAMIC_TOPIC_CONFIG' ? ' <button class="write reset-config">Use default</button>' : ''}`}</td></tr>`).join('')}
    </table>`;

  const form = document.getElementById('browse');
  const body = view.querySelector('#records tbody');
  const status = document.getElementById('browse-status');
  let shown = [];
  let next = null;
  const render = () => { body.innerHTML = shown.map(r => recordRow(r)).join(''); };
  const params = positions => {
    const p = new URLSearchParams();
    if (form.partition.value !== '') p.set('partition', form.partition.value);
    p.set('from', form.from.value);
    const at = form.at.value.trim();
    if (form.from.value === 'offset') p.set('offset', at || '0');
    if (form.from.value === 'timestamp') p.set('timestamp', /^\d+$/.test(at) ? at : String(Date.parse(at) || 0));
    p.set('limit', form.limit.value);
    if (form.q.value) p.set('q', form.q.value);
    p.set('scanLimit', form.scan.value);
    if (positions) p.set('positions', Object.entries(positions).map(([k, v]) => `${k}:${v}`).join(','));
    return p;
  };
  const load = async positions => {
    const page = await api(`/topics/${encodeURIComponent(name)}/records?` + params(positions));
    shown = positions ? shown.concat(page.records) : page.records;
    next = page.reachedEnd ? null : page.next;
    render();
    const searching = form.q.value ? ` matching "${form.q.value}"` : '';
    status.textContent = `${page.records.length} record(s)${searching}; ${page.scanned} scanned` +
      (page.reachedEnd ? ', up to the high watermark.' : form.q.value ? '; the scan limit was reached before the end: the search goes on with "Next page".' : '; more follow.');
    document.getElementById('more').hidden = !next;
  };
  form.onsubmit = e => { e.preventDefault(); load().catch(err => toast(err.message, true)); };
  document.getElementById('more').onclick = () => load(next).catch(err => toast(err.message, true));
  form.format.onchange = () => { format = form.format.value; render(); };
  format = form.format.value;
  document.getElementById('export-json').onclick = () => download(`${name}.json`, 'application/json', JSON.stringify(shown, null, 2));
  document.getElementById('export-csv').onclick = () => {
    const rows = [['partition', 'offset', 'timestamp', 'key', 'value', 'headers']].concat(
      shown.map(r => [r.partition, r.offset, r.timestamp, plain(r.key), plain(r.value), JSON.stringify(r.headers.map(([k, v]) => [k, plain(v)]))]));
    download(`${name}.csv`, 'text/csv', rows.map(r => r.map(csvCell).join(',')).join('\r\n') + '\r\n');
  };
  let source = null;
  const stopTail = () => { if (source) { source.close(); source = null; } };
  cleanup.push(stopTail);
  form.tail.onchange = () => {
    stopTail();
    if (!form.tail.checked) return;
    const p = form.partition.value === '' ? '' : '?partition=' + form.partition.value;
    source = new EventSource(`/api/topics/${encodeURIComponent(name)}/tail${p}`);
    source.addEventListener('record', ev => {
      const r = JSON.parse(ev.data);
      shown.push(r);
      body.insertAdjacentHTML('beforeend', recordRow(r, true));
      status.textContent = `live: ${shown.length} record(s) shown`;
    });
    source.addEventListener('notice', ev => {
      const n = JSON.parse(ev.data);
      document.getElementById('notices').insertAdjacentHTML('beforeend', `<p class="notice">${esc(n.message)}</p>`);
    });
  };
  await load();

  const produce = document.getElementById('produce');
  if (produce) produce.onsubmit = async e => {
    e.preventDefault();
    const headers = produce.headers.value.split(',').map(s => s.trim()).filter(Boolean).map(kv => {
      const i = kv.indexOf('=');
      return i < 0 ? { key: kv, value: null } : { key: kv.slice(0, i).trim(), value: kv.slice(i + 1).trim() };
    });
    const record = { key: produce.key.value || null, value: produce.value.value, headers };
    if (produce.partition.value !== '') record.partition = +produce.partition.value;
    try {
      const r = await api(`/topics/${encodeURIComponent(name)}/records`, { method: 'POST', body: record });
      document.getElementById('produced').textContent = `Written to partition ${r.partition} at offset ${r.offset}.`;
      toast(`Produced to ${name}[${r.partition}]@${r.offset}`);
    } catch (err) { toast(err.message, true); }
  };
  view.querySelectorAll('tr[data-config]').forEach(row => {
    const key = row.dataset.config;
    const save = row.querySelector('.save-config');
    const reset = row.querySelector('.reset-config');
    const alter = async change => {
      try {
        await api(`/topics/${encodeURIComponent(name)}/configs`, { method: 'PUT', body: change });
        toast(`Changed ${key}`);
        route();
      } catch (err) { toast(err.message, true); }
    };
    if (save) save.onclick = () => alter({ set: { [key]: row.querySelector('.config-value').value } });
    if (reset) reset.onclick = () => alter({ delete: [key] });
  });
}

// ---- groups -------------------------------------------------------------------

async function groups() {
  const list = await api('/groups');
  view.innerHTML = `<h1>Consumer groups</h1>
    <table id="groups"><tr><th>Group</th><th>State</th><th>Protocol type</th><th>Members</th><th>Lag</th></tr>
    ${list.map(g => `<tr data-group="${esc(g.group)}"><td><a href="/groups/${encodeURIComponent(g.group)}" data-link>${esc(g.group)}</a></td>
      <td>${esc(g.state)}</td><td>${esc(g.protocolType)}</td><td>${g.members}</td><td class="lag">${g.totalLag}</td></tr>`).join('') ||
      '<tr><td colspan="5" class="muted">No consumer groups.</td></tr>'}
    </table>`;
  const timer = setTimeout(() => { if (location.pathname === '/groups') route(); }, 3000);
  cleanup.push(() => clearTimeout(timer));
}

async function group(id) {
  const g = await api('/groups/' + encodeURIComponent(id));
  const topicsOf = [...new Set(g.partitions.map(p => p.topic))];
  view.innerHTML = `
    <h1>Group ${esc(g.group)}</h1>
    <section class="cards">
      <div><span>State</span><b id="group-state">${esc(g.state)}</b></div>
      <div><span>Protocol</span><b>${g.groupType === 'consumer'
        ? `consumer (KIP-848), ${esc(g.protocol)} assignor, epoch ${g.groupEpoch}`
        : `classic, ${esc(g.protocolType)} ${esc(g.protocol)}`}</b></div>
      <div><span>Members</span><b>${g.members.length}</b></div>
      <div><span>Total lag</span><b id="total-lag">${g.totalLag}</b></div>
    </section>
    <h2>Members</h2>
    <table id="members"><tr><th>Member</th><th>Instance</th><th>Client id</th><th>Host</th><th>Assignment</th>${g.groupType === 'consumer' ? '<th>Epoch</th><th>Target</th>' : ''}</tr>
    ${g.members.map(m => `<tr><td>${esc(m.memberId)}</td><td>${esc(m.groupInstanceId ?? '')}</td><td>${esc(m.clientId)}</td><td>${esc(m.host)}</td>
      <td>${esc(m.assignment.map(([t, p]) => `${t}[${p}]`).join(', '))}</td>${g.groupType === 'consumer'
        ? `<td>${m.memberEpoch}</td><td>${esc((m.targetAssignment ?? []).map(([t, p]) => `${t}[${p}]`).join(', '))}</td>` : ''}</tr>`).join('') || '<tr><td colspan="5" class="muted">No members.</td></tr>'}
    </table>
    <h2>Offsets and lag</h2>
    <table id="lag"><tr><th>Topic</th><th>Partition</th><th>Committed</th><th>Log end</th><th>Lag</th><th>Consumer</th></tr>
    ${g.partitions.map(p => `<tr><td><a href="/topics/${encodeURIComponent(p.topic)}" data-link>${esc(p.topic)}</a></td><td>${p.partition}</td>
      <td>${p.currentOffset ?? '-'}</td><td>${p.logEndOffset ?? '-'}</td><td class="lag">${p.lag ?? '-'}</td><td>${esc(p.clientId ?? '')}</td></tr>`).join('')}
    </table>
    <h2 class="write">Reset offsets</h2>
    <p class="write muted">Only while the group is empty (no members), as kafka-consumer-groups. Preview first: nothing changes until you execute.</p>
    <form id="reset" class="write inline">
      <input name="topic" list="group-topics" placeholder="topic" value="${esc(topicsOf[0] || '')}" required>
      <datalist id="group-topics">${topicsOf.map(t => `<option>${esc(t)}</option>`).join('')}</datalist>
      <select name="to"><option>earliest</option><option>latest</option><option value="timestamp">to time</option><option value="offset">to offset</option></select>
      <input name="value" placeholder="offset, or time (ISO / ms)">
      <button name="preview" value="1">Preview (dry run)</button>
      <button type="button" id="execute-reset" class="danger" disabled>Execute</button>
    </form>
    <table id="reset-plan"></table>
    <h2 class="write">Delete</h2>
    <p class="write">
      <button id="delete-offsets" class="danger">Delete the offsets of topic…</button>
      <button id="delete-group" class="danger">Delete this group</button>
    </p>`;
  const form = document.getElementById('reset');
  const plan = document.getElementById('reset-plan');
  const execute = document.getElementById('execute-reset');
  const request = exec => {
    const to = form.to.value;
    const r = { topic: form.topic.value, to, execute: exec };
    const v = form.value.value.trim();
    if (to === 'offset') r.value = +v;
    if (to === 'timestamp') r.value = /^\d+$/.test(v) ? +v : Date.parse(v);
    return r;
  };
  const showPlan = (result, title) => {
    plan.innerHTML = `<caption>${esc(title)}</caption><tr><th>Topic</th><th>Partition</th><th>Committed now</th><th>New offset</th></tr>` +
      result.offsets.map(m => `<tr><td>${esc(m.topic)}</td><td>${m.partition}</td><td>${m.currentOffset ?? '-'}</td><td class="new-offset">${m.newOffset}</td></tr>`).join('');
  };
  form.onsubmit = async e => {
    e.preventDefault();
    try {
      showPlan(await api(`/groups/${encodeURIComponent(id)}/reset`, { method: 'POST', body: request(false) }), 'Dry run: nothing was changed');
      execute.disabled = false;
    } catch (err) { toast(err.message, true); execute.disabled = true; }
  };
  execute.onclick = async () => {
    try {
      showPlan(await api(`/groups/${encodeURIComponent(id)}/reset`, { method: 'POST', body: request(true) }), 'Executed: these offsets are committed');
      toast('Offsets reset');
      execute.disabled = true;
    } catch (err) { toast(err.message, true); }
  };
  document.getElementById('delete-offsets').onclick = async () => {
    const t = prompt('Delete this group\'s committed offsets of which topic?', topicsOf[0] || '');
    if (!t) return;
    try {
      await api(`/groups/${encodeURIComponent(id)}/offsets/${encodeURIComponent(t)}`, { method: 'DELETE' });
      toast(`Deleted the offsets of ${t}`);
      route();
    } catch (err) { toast(err.message, true); }
  };
  document.getElementById('delete-group').onclick = async () => {
    if (!confirm(`Delete group ${id} and its committed offsets?`)) return;
    try {
      await api('/groups/' + encodeURIComponent(id), { method: 'DELETE' });
      toast(`Deleted group ${id}`);
      go('/groups');
    } catch (err) { toast(err.message, true); }
  };
  const timer = setTimeout(() => { if (location.pathname === '/groups/' + encodeURIComponent(id) && !plan.innerHTML) route(); }, 3000);
  cleanup.push(() => clearTimeout(timer));
}

// ---- trace --------------------------------------------------------------------

async function trace() {
  const s = await api('/trace');
  view.innerHTML = `
    <h1>Protocol trace</h1>
    <p class="muted">Every request and response, decoded, as strom handles them (also in the log under <code>strom::trace</code>).</p>
    <form id="trace-settings" class="inline">
      <label><input type="checkbox" name="on" ${s.on ? 'checked' : ''} class="write-toggle"> trace on</label>
      <label><input type="checkbox" name="records" ${s.records ? 'checked' : ''}> show records</label>
      <input name="client" placeholder="client id contains" value="${esc(s.filter.client ?? '')}">
      <input name="apis" placeholder="APIs, e.g. Produce,Fetch" value="${esc(s.filter.apis ?? '')}">
      <input name="topic" placeholder="topic" value="${esc(s.filter.topic ?? '')}">
      <button class="write">Apply</button>
      <label><input type="checkbox" name="pause"> pause view</label>
      <button type="button" id="clear-trace">Clear</button>
    </form>
    <div id="trace-notices"></div>
    <ol id="trace" reversed></ol>`;
  const form = document.getElementById('trace-settings');
  const list = document.getElementById('trace');
  if (info.readOnly) form.on.disabled = form.records.disabled = true;
  form.onsubmit = async e => {
    e.preventDefault();
    try {
      await api('/trace', { method: 'PUT', body: { on: form.on.checked, records: form.records.checked, client: form.client.value, apis: form.apis.value, topic: form.topic.value } });
      toast(form.on.checked ? 'Trace on' : 'Trace off');
    } catch (err) { toast(err.message, true); }
  };
  form.on.onchange = () => form.requestSubmit();
  document.getElementById('clear-trace').onclick = () => { list.innerHTML = ''; };
  const source = new EventSource('/api/trace/stream');
  cleanup.push(() => source.close());
  source.addEventListener('trace', ev => {
    if (form.pause.checked) return;
    const t = JSON.parse(ev.data);
    const li = document.createElement('li');
    li.className = t.errors.length ? 'trace bad' : 'trace';
    li.innerHTML = `<div class="head"><b>${esc(t.api)} v${t.version}</b> #${t.correlationId} · ${esc(t.clientId)} @ ${esc(t.peer)} · ${(t.latencyUs / 1000).toFixed(3)} ms</div>
      <div class="req">→ ${esc(t.request)} <span class="muted">(${t.requestBytes} B)</span></div>
      <div class="resp">← ${esc(t.response)} <span class="muted">(${t.responseBytes} B)</span></div>`;
    list.prepend(li);
    while (list.children.length > 500) list.lastChild.remove();
  });
  source.addEventListener('notice', ev => {
    document.getElementById('trace-notices').insertAdjacentHTML('beforeend', `<p class="notice">${esc(JSON.parse(ev.data).message)}</p>`);
  });
}

// ---- start ----------------------------------------------------------------------

(async () => {
  try { info = await api('/info'); } catch (_) { /* shown by the view */ }
  if (info.readOnly) {
    document.body.classList.add('read-only');
    document.getElementById('mode').textContent = 'read-only';
  }
  route();
})();
