#!/usr/bin/env node
// The polling_vs_ws demo page in headless Chromium.
//
//   node tests/demo/browser_demo.mjs [BUILD_DIR]
//
// Starts BUILD_DIR/examples/polling_vs_ws (PVW_SERVER=path overrides) on
// a free 127.0.0.1 port with the page from examples/polling_vs_ws/www and
// 10 updates per second, opens the page in Debian's /usr/bin/chromium
// (CHROMIUM=path overrides) through playwright-core from
// tests/interop/node/node_modules (never downloads a browser), sets the
// short polling interval to 1000 ms, lets it run ~12 s and checks what the
// page measured (window.pvwStats()): every transport got updates, the
// WebSocket is faster than short polling and cheapest in bytes per update,
// no duplicates where the protocol resumes exactly, the echo round trip
// works, the rate control reaches the server, and the page fetched nothing
// from anywhere else. Saves a full-page screenshot to BUILD_DIR/demo.png.
// A missing server binary, chromium or playwright-core: SKIP (a failure
// when WS_REQUIRE_PEERS=1). Output: TAP, then "N passed, N failed"; exit 1
// on a failure. Bounded by 60 s; the browser and the server are always
// stopped.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  check, diag, finish, overallTimeout, skipOrFail, spawnChild, stopChild,
  withTimeout,
} from '../interop/node/tap.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const nodeDir = path.join(repo, 'tests', 'interop', 'node');

let build = process.env.B || path.join(repo, 'build');
const argv = process.argv.slice(2);
for (const a of argv) {
  if (a === '--help') {
    console.log('usage: browser_demo.mjs [BUILD_DIR]');
    process.exit(0);
  }
  build = a;
}
build = path.resolve(build);
const server = process.env.PVW_SERVER || path.join(build, 'examples', 'polling_vs_ws');
const www = path.join(repo, 'examples', 'polling_vs_ws', 'www');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const shot = path.join(build, 'demo.png');
const RUN_MS = 12000;
const T = ['poll', 'longpoll', 'sse', 'ws'];

function skip(what) {
  skipOrFail(what);
  finish();
  process.exit(process.exitCode);
}

if (!existsSync(server)) skip(`polling_vs_ws not built (${server})`);
if (!existsSync(chromiumPath)) skip(`${chromiumPath} not found (Debian package chromium)`);
let chromium;
try {
  ({ chromium } = createRequire(path.join(nodeDir, 'package.json'))('playwright-core'));
} catch (e) {
  skip(`playwright-core not installed (npm ci --prefix tests/interop/node): ${e.code || e.message}`);
}

overallTimeout(60000, 'browser_demo');

// Start the server and read its port from "polling_vs_ws: open http://HOST:PORT/".
async function startServer() {
  const child = spawnChild(server, ['--host', '127.0.0.1', '--port', '0', '--www', www, '--rate', '10']);
  const origin = await withTimeout(new Promise((resolve, reject) => {
    const look = () => {
      const m = /polling_vs_ws: open (http:\/\/[^/\s]+)\//.exec(child.stdoutText + child.stderrText);
      if (m) resolve(m[1]);
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.exited.then(({ code, signal, error }) => reject(new Error(
      `${server} exited before listening (code ${code}, signal ${signal}` +
      `${error ? ', ' + error.message : ''}): ${child.stderrText}`)));
  }), 10000, 'polling_vs_ws to print "polling_vs_ws: open http://..."');
  return { child, origin };
}

const fmt = (v) => (v === null || v === undefined ? 'null'
  : typeof v === 'number' ? String(Math.round(v * 100) / 100) : String(v));

const profile = mkdtempSync(path.join(os.tmpdir(), 'pvw-chromium-'));
let srv = null;
let context = null;
try {
  srv = await startServer();
  const url = srv.origin + '/';
  context = await withTimeout(chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    timeout: 30000,
    viewport: { width: 1400, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-features=LocalNetworkAccessChecks'],
  }), 35000, 'chromium launch');
  diag(`chromium ${context.browser()?.version() ?? ''} (${chromiumPath}), page ${url}`);
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(15000);
  const problems = [];
  const foreign = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('request', (r) => {
    const u = r.url();
    const ok = [srv.origin + '/', srv.origin.replace('http:', 'ws:') + '/', `blob:${srv.origin}/`, 'data:'];
    if (!ok.some((p) => u.startsWith(p))) foreign.push(u);
  });

  const resp = await page.goto(url, { waitUntil: 'load' });
  check('GET / serves the page', resp && resp.status() === 200, resp && resp.status());
  await page.waitForSelector('#panel-ws', { timeout: 10000 });
  await page.check('input[name=interval][value="1000"]');
  check('polling interval set to 1000 ms',
    (await page.evaluate(() => window.pvwStats().pollInterval)) === 1000);

  await page.waitForTimeout(RUN_MS);
  const st = await page.evaluate(() => window.pvwStats());
  for (const t of T) {
    const s = st[t];
    diag(`${t.padEnd(8)} received ${s.received} missed ${s.missed} dup ${s.duplicated} ` +
      `median ${fmt(s.median)} ms p95 ${fmt(s.p95)} ms requests ${s.requests} | ` +
      `down ${fmt(st.table[t].bytesDownPerUpdate)} B/u up ${fmt(st.table[t].bytesUpPerUpdate)} B/u ` +
      `req/u ${fmt(st.table[t].requestsPerUpdate)}`);
  }
  diag(`echo ${JSON.stringify(st.echo)}, rate ${st.rate}`);

  for (const t of T) check(`${t}: received updates`, st[t].received > 0, `received ${st[t].received}`);
  check('WebSocket median latency < short polling median',
    st.ws.median !== null && st.poll.median !== null && st.ws.median < st.poll.median,
    `ws ${fmt(st.ws.median)} ms, poll ${fmt(st.poll.median)} ms`);
  // Bytes per update. A WebSocket update is the bare JSON object plus a
  // 2-byte frame header; an SSE event adds "id: N\ndata: " and a blank
  // line; polling answers carry HTTP headers. So the WebSocket is the
  // cheapest downstream, and counting both directions (polling pays a
  // full request per ask) it beats both pollings by far.
  const down = T.map((t) => st.table[t].bytesDownPerUpdate);
  const both = T.map((t) => st.table[t].bytesDownPerUpdate + st.table[t].bytesUpPerUpdate);
  const allNum = T.every((t) => typeof st.table[t].bytesDownPerUpdate === 'number' &&
    typeof st.table[t].bytesUpPerUpdate === 'number');
  diag(`bytes/update down: ${T.map((t, i) => `${t} ${fmt(down[i])}`).join(', ')}; ` +
    `lowest: ${T[down.indexOf(Math.min(...down))]}`);
  check('table: WebSocket bytes per update (down) is the lowest',
    allNum && down[3] <= Math.min(...down), T.map((t, i) => `${t} ${fmt(down[i])}`).join(', '));
  check('table: WebSocket bytes per update (down + up) below short and long polling',
    allNum && both[3] < both[0] && both[3] < both[1], T.map((t, i) => `${t} ${fmt(both[i])}`).join(', '));
  for (const t of ['longpoll', 'sse', 'ws'])
    check(`${t}: no duplicates`, st[t].duplicated === 0, `duplicated ${st[t].duplicated}`);
  check('echo round trip over the WebSocket', st.echo && st.echo.replies > 0 && st.echo.rtt !== null,
    JSON.stringify(st.echo));
  check('server rate shown (10/s)', st.rate === 10, `rate ${st.rate}`);

  await page.screenshot({ path: shot, fullPage: true });
  check(`screenshot saved (${shot})`, existsSync(shot));

  // The rate control goes up the WebSocket and comes back as {"type":"rate"}.
  await page.check('input[name=rate][value="20"]');
  let rate = null;
  for (let i = 0; i < 30 && rate !== 20; i++) {
    await page.waitForTimeout(100);
    rate = await page.evaluate(() => window.pvwStats().rate);
  }
  check('rate control: the server pushes the new rate back (20/s)', rate === 20, `rate ${rate}`);
  const serverRate = await page.evaluate(async () => (await (await fetch('/stats')).json()).rate);
  check('rate control: /stats reports 20/s', serverRate === 20, `rate ${serverRate}`);

  // Reset stats zeroes the page's counters (and re-baselines the table).
  const before = await page.evaluate(() => window.pvwStats().ws.received);
  await page.click('#reset');
  const after = await page.evaluate(() => window.pvwStats().ws.received);
  check('Reset stats zeroes the counters', after < before && after <= 5, `ws received ${before} -> ${after}`);

  check('nothing fetched from outside the server', foreign.length === 0, foreign.join('\n'));
  check('no errors in the page', problems.length === 0, problems.join('\n'));
} catch (e) {
  check('browser demo ran', false, e.stack || e);
  if (srv && srv.child.stderrText) diag('server stderr:\n' + srv.child.stderrText.slice(-2000));
} finally {
  if (context) await withTimeout(context.close(), 10000, 'browser close').catch((e) => diag(e.message));
  if (srv) await stopChild(srv.child);
  rmSync(profile, { recursive: true, force: true });
}
finish();
process.exit(process.exitCode);
