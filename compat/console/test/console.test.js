// strom's web console in Debian's Chromium, driven by playwright-core, against
// a real strom process (STROM_BROKER, STROM_CONSOLE) with kcat beside it.
// Screenshots go to SCREENSHOTS (test artefacts).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const broker = process.env.STROM_BROKER;
const base = process.env.STROM_CONSOLE;
const bin = process.env.STROM_BIN;
const shots = process.env.SCREENSHOTS || path.join(os.tmpdir(), 'strom-console-shots');
fs.mkdirSync(shots, { recursive: true });

const kcat = (args, input) => execFileSync('kcat', ['-b', broker, ...args], { input, encoding: 'utf8', timeout: 30000 });
const sleep = ms => new Promise(r => setTimeout(r, ms));

async function until(what, check, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function api(p, options) {
  const r = await fetch(base + '/api' + p, options);
  return r.json();
}

let browser;
let page;

test.before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('dialog', d => d.accept());
});

test.after(async () => {
  if (browser) await browser.close();
});

const shot = name => page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });

const orders = [1, 2, 3, 4, 5].map(i =>
  `user-${i}:${JSON.stringify({ orderId: i, userId: `u${i}`, items: [{ productId: `p${i}`, quantity: i }], totalPrice: i * 11 + 0.5 })}`);

test('a topic created in the page, orders produced with kcat, shown pretty-printed', async () => {
  await page.goto(base + '/topics');
  await page.fill('#create-topic input[name=name]', 'orders');
  await page.fill('#create-topic input[name=partitions]', '3');
  await page.click('#create-topic button');
  await page.waitForSelector('#topics tr[data-topic="orders"]');

  kcat(['-P', '-t', 'orders', '-K:'], orders.join('\n') + '\n');
  await page.goto(base + '/topics/orders');
  await until('five orders in the browser', async () => (await page.$$('#records tbody tr')).length === 5);
  const values = await page.$$eval('#records td.value pre.json', els => els.map(e => e.textContent));
  assert.equal(values.length, 5);
  assert.ok(values.some(v => v.includes('"orderId": 3') && v.includes('\n')), values.join('|'));
  await shot('topic-orders');
  // The README's picture: what a window shows.
  await page.screenshot({ path: path.join(shots, 'readme-topic.png') });
});

test('search finds one order by a value field and says what it scanned', async () => {
  await page.goto(base + '/topics/orders');
  await page.waitForSelector('#records tbody tr');
  await page.fill('#browse input[name=q]', '"totalPrice":44.5');
  await page.selectOption('#browse select[name=from]', 'earliest');
  await page.click('#browse button:has-text("Show")');
  await until('one match', async () => (await page.$$('#records tbody tr')).length === 1);
  assert.match(await page.textContent('#records tbody'), /user-4/);
  assert.match(await page.textContent('#browse-status'), /5 scanned/);
  await shot('search');
});

test('live tail shows a record produced after the page opened', async () => {
  await page.goto(base + '/topics/orders');
  await page.waitForSelector('#records tbody tr');
  await page.check('#browse input[name=tail]');
  await sleep(800);
  kcat(['-P', '-t', 'orders', '-K:'], 'late-1:{"orderId":99,"late":true}\n');
  await page.waitForSelector('#records tr.live:has-text("late-1")', { timeout: 15000 });
  await shot('live-tail');
});

test('a message produced from the page is read back by kcat', async () => {
  await page.goto(base + '/topics/orders');
  await page.fill('#produce input[name=key]', 'web-1');
  await page.fill('#produce textarea[name=value]', '{"orderId":100,"source":"console"}');
  await page.fill('#produce input[name=headers]', 'origin=browser');
  await page.click('#produce button');
  const text = await until('the produce answer', async () => {
    const t = await page.textContent('#produced');
    return /Written to partition \d+ at offset \d+/.test(t) && t;
  });
  const [, partition, offset] = text.match(/partition (\d+) at offset (\d+)/);
  const read = kcat(['-C', '-t', 'orders', '-p', partition, '-o', offset, '-c', '1', '-e', '-q', '-f', '%k %s %h']);
  assert.equal(read.trim(), 'web-1 {"orderId":100,"source":"console"} origin=browser');
});

test('a kcat group: lag goes to zero; reset with a dry run, then executed', async () => {
  const consumer = spawn('kcat', ['-b', broker, '-G', 'shop-analytics', '-X', 'auto.offset.reset=earliest', '-q', 'orders'],
    { stdio: 'ignore' });
  try {
    await page.goto(base + '/groups/shop-analytics');
    await until('the group stable with lag 0', async () => {
      await page.goto(base + '/groups/shop-analytics');
      const state = await page.textContent('#group-state').catch(() => '');
      const lag = await page.textContent('#total-lag').catch(() => '');
      return state === 'Stable' && lag === '0';
    }, 60);
    await shot('group-stable');
  } finally {
    consumer.kill('SIGTERM');
  }
  await until('the group empty', async () => (await api('/groups/shop-analytics')).state === 'Empty', 60);
  await page.goto(base + '/groups/shop-analytics');
  await page.selectOption('#reset select[name=to]', 'earliest');
  await page.click('#reset button[name=preview]');
  await page.waitForSelector('#reset-plan td.new-offset');
  const planned = await page.$$eval('#reset-plan td.new-offset', els => els.map(e => e.textContent));
  assert.ok(planned.length === 3 && planned.every(v => v === '0'), planned.join(','));
  assert.equal((await api('/groups/shop-analytics')).totalLag, 0, 'a dry run changes nothing');
  await shot('reset-dry-run');
  await page.click('#execute-reset');
  await page.waitForSelector('#reset-plan caption:has-text("Executed")');
  assert.equal((await api('/groups/shop-analytics')).totalLag, 7);
});

test('the trace page streams requests live', async () => {
  await page.goto(base + '/trace');
  await page.fill('#trace-settings input[name=apis]', 'Produce');
  if (!(await page.isChecked('#trace-settings input[name=on]'))) await page.check('#trace-settings input[name=on]');
  await page.click('#trace-settings button:has-text("Apply")');
  await sleep(500);
  kcat(['-P', '-t', 'orders', '-K:'], 'traced:{"orderId":7}\n');
  await page.waitForSelector('#trace li.trace:has-text("Produce v")', { timeout: 15000 });
  assert.match(await page.textContent('#trace'), /orders\[\d\]: NONE base_offset=/);
  await shot('trace');
  await page.goto(base + '/');
  await page.waitForSelector('#clients');
  await shot('overview');
});

function startStrom(port, http, extra) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strom-console-'));
  const log = fs.openSync(path.join(shots, `strom-${http}.log`), 'w');
  const child = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--data-dir', dir, '--http-listen', `127.0.0.1:${http}`, ...extra],
    { stdio: ['ignore', log, log] });
  const exited = new Promise(resolve => child.on('exit', resolve));
  return { child, dir, exited, url: `http://127.0.0.1:${http}` };
}

test('token and read-only modes refuse writes', async () => {
  const port = Number(broker.split(':')[1]);
  const secured = startStrom(port + 20, port + 21, ['--console-token', 't0ken']);
  const readOnly = startStrom(port + 30, port + 31, ['--console-read-only']);
  try {
    await until('both consoles up', async () => {
      try {
        return (await fetch(secured.url + '/health')).ok && (await fetch(readOnly.url + '/health')).ok;
      } catch (_) { return false; }
    });
    await page.goto(secured.url + '/topics');
    assert.match(await page.textContent('body'), /requires a token/);
    const refused = await fetch(secured.url + '/api/topics', { method: 'POST', headers: { 'X-Strom-Console': '1', 'Content-Type': 'application/json' }, body: '{"name":"x"}' });
    assert.equal(refused.status, 401);
    await page.goto(secured.url + '/topics?token=t0ken');
    await page.waitForSelector('#create-topic');
    await page.goto(secured.url + '/topics');
    await page.fill('#create-topic input[name=name]', 'with-token');
    await page.click('#create-topic button');
    await page.waitForSelector('#topics tr[data-topic="with-token"]');

    await page.goto(readOnly.url + '/topics');
    await page.waitForSelector('#topics');
    assert.equal(await page.isVisible('#create-topic'), false, 'no create form in read-only mode');
    assert.match(await page.textContent('#mode'), /read-only/);
    const status = await page.evaluate(async () => (await fetch('/api/topics', {
      method: 'POST', headers: { 'X-Strom-Console': '1', 'Content-Type': 'application/json' }, body: '{"name":"nope"}',
    })).status);
    assert.equal(status, 403);
    await shot('read-only');
  } finally {
    for (const s of [secured, readOnly]) {
      s.child.kill('SIGTERM');
      const code = await Promise.race([s.exited, sleep(15000).then(() => 'still running')]);
      if (code === 'still running') s.child.kill('SIGKILL');
      fs.rmSync(s.dir, { recursive: true, force: true });
      assert.equal(code, 0, `strom ${s.url} stops on SIGTERM (log: ${shots}/strom-*.log)`);
    }
  }
});
