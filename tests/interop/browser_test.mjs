#!/usr/bin/env node
// Headless Chromium as a WebSocket client of examples/echo_server.
//
//   node tests/interop/browser_test.mjs [BUILD_DIR] [--echo-server PATH]
//
// Uses playwright-core from tests/interop/node/node_modules
// (npm ci --prefix tests/interop/node) to drive Debian's /usr/bin/chromium
// (CHROMIUM=path overrides); never downloads a browser. The page is
// about:blank; the WebSocket work runs inside the page (page.evaluate) and
// returns its results. Missing chromium or node_modules: SKIP, a failure
// when WS_REQUIRE_PEERS=1. wss:// is not tested (the browser rejects the
// test certificate). Output: TAP, then "N passed, N failed". Bounded by 60 s.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  check, diag, finish, overallTimeout, skipOrFail, startEchoServer, stopChild,
  withTimeout,
} from './node/tap.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const nodeDir = path.join(here, 'node');

let build = process.env.B || path.join(repo, 'build');
let echoServer = process.env.ECHO_SERVER;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--echo-server') echoServer = argv[++i];
  else if (argv[i] === '--help') {
    console.log('usage: browser_test.mjs [BUILD_DIR] [--echo-server PATH]');
    process.exit(0);
  } else build = argv[i];
}
echoServer ??= path.join(build, 'examples', 'echo_server');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

function skip(what) {
  skipOrFail(what);
  finish();
  process.exit(process.exitCode);
}

if (!existsSync(chromiumPath))
  skip(`${chromiumPath} not found (Debian package chromium): browser tests skipped`);
let chromium;
try {
  ({ chromium } = createRequire(path.join(nodeDir, 'package.json'))('playwright-core'));
} catch (e) {
  skip(`playwright-core not installed (npm ci --prefix tests/interop/node): ${e.code || e.message}`);
}

overallTimeout(60000, 'browser_test');

// Runs inside the page. Returns [{name, ok, detail}].
async function inPage({ url }) {
  const results = [];
  const add = (name, ok, detail) => results.push({ name, ok: Boolean(ok), detail: String(detail ?? '') });
  const timeout = (p, ms, what) => Promise.race([p, new Promise((_, rej) =>
    setTimeout(() => rej(new Error(`timeout ${ms} ms: ${what}`)), ms))]);

  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const queue = [];
  const waiters = [];
  ws.onmessage = (e) => (waiters.length ? waiters.shift()(e.data) : queue.push(e.data));
  const next = (what) => timeout(new Promise((r) => (queue.length ? r(queue.shift()) : waiters.push(r))), 10000, what);
  const closed = new Promise((r) => { ws.onclose = (e) => r({ code: e.code, reason: e.reason, wasClean: e.wasClean }); });
  const errors = [];
  ws.onerror = () => errors.push('error event');

  const eqBytes = (a, b) => {
    if (!(a instanceof ArrayBuffer)) return false;
    const x = new Uint8Array(a);
    if (x.length !== b.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== b[i]) return false;
    return true;
  };
  const randomBytes = (n) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
    return b;
  };
  const show = (d) => (typeof d === 'string'
    ? `text(${d.length}) ${d.slice(0, 40)}`
    : d instanceof ArrayBuffer ? `binary(${d.byteLength})` : typeof d);

  try {
    await timeout(new Promise((resolve, reject) => {
      ws.onopen = resolve;
      closed.then((c) => reject(new Error(`closed before open: ${c.code}`)));
    }), 10000, 'open');
    add('browser: connects', ws.readyState === WebSocket.OPEN, ws.readyState);
    add('browser: ws.protocol is "" (none offered)', ws.protocol === '', JSON.stringify(ws.protocol));
    add('browser: ws.extensions is "" (no permessage-deflate)', ws.extensions === '', JSON.stringify(ws.extensions));

    const text = 'héllo wörld €𝄞';
    ws.send(text);
    let d = await next('text echo');
    add('browser: text echo "héllo wörld €𝄞"', d === text, show(d));

    const bin = randomBytes(1000);
    ws.send(bin.buffer);
    d = await next('binary echo');
    add('browser: binary echo (ArrayBuffer, 1000 random bytes)', eqBytes(d, bin), show(d));

    ws.send('');
    d = await next('empty text echo');
    add('browser: empty text echo', d === '', show(d));

    const big = randomBytes(1 << 20);
    ws.send(big);
    d = await next('1 MiB binary echo');
    add('browser: 1 MiB binary echo', eqBytes(d, big), show(d));

    const bigText = '€𝄞é'.repeat(1 << 17);   // (3 + 4 + 2) bytes * 128 Ki = 1.125 MiB of UTF-8
    ws.send(bigText);
    d = await next('1 MiB text echo');
    add('browser: 1 MiB non-ASCII text echo', d === bigText, show(d));

    const sent = [];
    for (let i = 0; i < 50; i++) {
      const m = i % 2 ? `n°${i}` : new Uint8Array([i, 255 - i]);
      sent.push(m);
      ws.send(m);
    }
    let inOrder = true;
    for (let i = 0; i < 50; i++) {
      d = await next(`pipelined ${i}`);
      if (i % 2 ? d !== sent[i] : !eqBytes(d, sent[i])) inOrder = false;
    }
    add('browser: 50 pipelined messages in order', inOrder, '');

    ws.close(1000, 'bye');
    const c = await timeout(closed, 10000, 'close');
    add('browser: close(1000, "bye") -> onclose code 1000, wasClean',
      c.code === 1000 && c.wasClean, JSON.stringify(c));
  } catch (e) {
    add('browser: no exception', false, `${e.message}; errors: ${errors.join(',')}`);
    try { ws.close(); } catch { /* ignore */ }
  }
  return results;
}

let srv;
let context;
const profile = mkdtempSync(path.join(os.tmpdir(), 'libws-chromium-'));
try {
  srv = await startEchoServer(echoServer);
  const url = `ws://127.0.0.1:${srv.port}/`;
  context = await withTimeout(chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    timeout: 30000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Chromium >= 14x: about:blank is not a loopback context, so Local
      // Network Access blocks its ws://127.0.0.1 with
      // net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS (seen with 156).
      '--disable-features=LocalNetworkAccessChecks'],
  }), 35000, 'chromium launch');
  const browserVersion = context.browser()?.version() ?? '';
  diag(`chromium ${browserVersion} (${chromiumPath}), echo_server on ${url}`);
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(30000);
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  await page.goto('about:blank');
  const results = await withTimeout(page.evaluate(inPage, { url }), 40000, 'page.evaluate');
  for (const r of results) check(r.name, r.ok, r.detail);
  if (results.some((r) => !r.ok) && consoleLines.length) diag('page console:\n' + consoleLines.join('\n'));
} catch (e) {
  check('browser test ran', false, e.stack || e);
} finally {
  if (context) await withTimeout(context.close(), 10000, 'browser close').catch((e) => diag(e.message));
  if (srv) await stopChild(srv.child);
  rmSync(profile, { recursive: true, force: true });
}
finish();
process.exit(process.exitCode);
