#!/usr/bin/env node
// Black-box interop tests of libws against the Node `ws` package.
//
//   node ws_interop.mjs [BUILD_DIR] [--echo-server PATH] [--wscat PATH]
//
// Part A: `ws` as the CLIENT of BUILD_DIR/examples/echo_server.
// Part B: `ws` as the SERVER for BUILD_DIR/examples/wscat --echo
//         ("# SKIP wscat not built" while that example does not exist).
// BUILD_DIR defaults to build/ at the top of the repository; ECHO_SERVER
// and WSCAT in the environment override the paths too. Every socket is on
// 127.0.0.1. Output: TAP, then "N passed, N failed"; exit 1 on a failure.
// The whole run is bounded by 60 s.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  check, checkTodo, diag, finish, overallTimeout, prng, skipOrFail, spawnChild,
  startEchoServer, stopChild, withTimeout,
} from './tap.mjs';

let WebSocket, WebSocketServer;
try {
  ({ WebSocket, WebSocketServer } = await import('ws'));
} catch (e) {
  skipOrFail(`node package ws not installed (npm ci --prefix tests/interop/node): ${e.code || e.message}`);
  finish();
  process.exit(process.exitCode);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..', '..');

function parseArgs(argv) {
  const o = { build: process.env.B || path.join(repo, 'build') };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--echo-server') o.echoServer = argv[++i];
    else if (argv[i] === '--wscat') o.wscat = argv[++i];
    else if (argv[i] === '--help') {
      console.log('usage: ws_interop.mjs [BUILD_DIR] [--echo-server PATH] [--wscat PATH]');
      process.exit(0);
    } else o.build = argv[i];
  }
  o.echoServer ??= process.env.ECHO_SERVER || path.join(o.build, 'examples', 'echo_server');
  o.wscat ??= process.env.WSCAT || path.join(o.build, 'examples', 'wscat');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
overallTimeout(60000, 'ws_interop');

const STEP_MS = 10000;
const MiB = 1 << 20;

// A connected client with a FIFO of received messages.
function openClient(url, options = {}) {
  const ws = new WebSocket(url, { maxPayload: 64 * MiB, ...options });
  const queue = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const m = { data, isBinary };
    if (waiters.length) waiters.shift()(m);
    else queue.push(m);
  });
  ws.next = (what = 'message') => withTimeout(new Promise((resolve) => {
    if (queue.length) resolve(queue.shift());
    else waiters.push(resolve);
  }), STEP_MS, what);
  ws.closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  ws.errors = [];
  ws.on('error', (e) => ws.errors.push(e));
  ws.opened = withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  }), STEP_MS, `connect to ${url}`);
  return ws;
}

function same(m, expected, binary) {
  const exp = Buffer.isBuffer(expected) ? expected : Buffer.from(expected, 'utf8');
  return m.isBinary === binary && Buffer.from(m.data).equals(exp);
}

function describe(m) {
  const b = Buffer.from(m.data);
  return `${m.isBinary ? 'binary' : 'text'}, ${b.length} bytes` +
    (b.length <= 64 ? `: ${b.toString('hex')}` : '');
}

async function step(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(name, false, e.stack || e);
  }
}

// ---- Part A: ws as the client of echo_server -----------------------------
async function partA() {
  let srv;
  try {
    srv = await startEchoServer(opts.echoServer);
  } catch (e) {
    check('echo_server starts', false, e.message);
    return;
  }
  const url = `ws://127.0.0.1:${srv.port}/`;
  diag(`ws as client of ${opts.echoServer} on ${url}`);
  const ws = openClient(url);
  try {
    await step('ws client: connects', async () => {
      await ws.opened;
      check('ws client: connects, no subprotocol', ws.protocol === '', ws.protocol);
    });
    if (ws.readyState !== WebSocket.OPEN) return;

    await step('text echo (non-ASCII, 4-byte emoji)', async () => {
      const s = 'héllo wörld €𝄞 😀 日本語';
      ws.send(s);
      const m = await ws.next();
      check('text echo (non-ASCII, 4-byte emoji)', same(m, s, false), describe(m));
    });
    await step('binary echo', async () => {
      const b = prng(300, 1);
      ws.send(b);
      const m = await ws.next();
      check('binary echo (300 bytes)', same(m, b, true), describe(m));
    });
    await step('empty messages', async () => {
      ws.send('');
      const m1 = await ws.next();
      ws.send(Buffer.alloc(0));
      const m2 = await ws.next();
      check('empty text echo', same(m1, '', false), describe(m1));
      check('empty binary echo', same(m2, Buffer.alloc(0), true), describe(m2));
    });
    await step('frame length boundaries', async () => {
      const sizes = [125, 126, 127, 65535, 65536];
      for (const n of sizes) ws.send(prng(n, n));
      let ok = true;
      const bad = [];
      for (const n of sizes) {
        const m = await ws.next();
        if (!same(m, prng(n, n), true)) { ok = false; bad.push(`${n}: ${describe(m)}`); }
      }
      check('binary echo at 125/126/127/65535/65536 bytes', ok, bad.join('\n'));
    });
    await step('1 MiB binary', async () => {
      const b = prng(MiB, 7);
      ws.send(b);
      const m = await ws.next('1 MiB echo');
      check('1 MiB binary echo', same(m, b, true), describe(m));
    });
    await step('100 pipelined', async () => {
      for (let i = 0; i < 100; i++) {
        if (i % 2) ws.send(`msg ${i} ✓`);
        else ws.send(Buffer.from(`bin ${i}`));
      }
      const bad = [];
      for (let i = 0; i < 100; i++) {
        const m = await ws.next(`pipelined message ${i}`);
        const ok = i % 2 ? same(m, `msg ${i} ✓`, false) : same(m, Buffer.from(`bin ${i}`), true);
        if (!ok) bad.push(`#${i}: ${describe(m)}`);
      }
      check('100 pipelined messages echoed in order', bad.length === 0, bad.slice(0, 5).join('\n'));
    });
    await step('ping/pong', async () => {
      const pong = withTimeout(new Promise((resolve) => ws.once('pong', resolve)), STEP_MS, 'pong');
      ws.ping(Buffer.from('ping-é'));
      const payload = await pong;
      check('ping answered by pong with the same payload',
        Buffer.from(payload).equals(Buffer.from('ping-é')), Buffer.from(payload).toString('hex'));
    });
    await step('fragmented text', async () => {
      ws.send('frag', { fin: false });
      ws.send('ment-€', { fin: false });
      ws.send('𝄞', { fin: true });
      const m = await ws.next();
      check('fragmented text (3 frames) echoed as one message', same(m, 'fragment-€𝄞', false), describe(m));
    });
    await step('fragmented binary + ping', async () => {
      const a = prng(1000, 3);
      const b = prng(70000, 4);
      const pong = withTimeout(new Promise((resolve) => ws.once('pong', resolve)), STEP_MS, 'pong');
      ws.send(a, { fin: false });
      ws.ping('mid');
      ws.send(b, { fin: true });
      const m = await ws.next();
      const p = await pong;
      check('fragmented binary with a ping between fragments',
        same(m, Buffer.concat([a, b]), true) && Buffer.from(p).toString() === 'mid', describe(m));
    });
    await step('close 4000', async () => {
      ws.close(4000, 'done é');
      const c = await withTimeout(ws.closed, STEP_MS, 'close handshake');
      check('close 4000 + reason: server echoes code 4000', c.code === 4000,
        `code ${c.code} reason ${JSON.stringify(c.reason)}`);
    });
  } finally {
    ws.terminate();
  }

  // Protocol errors a well-behaved client can still be made to commit.
  await step('invalid UTF-8 -> 1007', async () => {
    const w = openClient(url);
    await w.opened;
    // ws does not validate outgoing text: this sends a text frame with
    // a UTF-16 surrogate encoded in UTF-8 (invalid, RFC 3629).
    w.send(Buffer.from([0xce, 0xba, 0xed, 0xa0, 0x80]), { binary: false });
    const c = await withTimeout(w.closed, STEP_MS, 'close after invalid UTF-8');
    check('invalid UTF-8 in a text message -> server closes 1007', c.code === 1007, `code ${c.code}`);
    w.terminate();
  });
  await step('too big -> 1009', async () => {
    const w = openClient(url);
    await w.opened;
    // echo_server's default limit is 16 MiB. libws fails the connection
    // as soon as it reads the frame header and sends close 1009; then it
    // half-closes and drains the rest (RFC 6455 7.1.1), so no TCP reset
    // destroys the close frame before `ws` reads it.
    w.send(Buffer.alloc(16 * MiB + 1));
    const c = await withTimeout(w.closed, STEP_MS, 'close after 16 MiB + 1');
    check('message over --max-message (16 MiB + 1) -> client sees close 1009', c.code === 1009,
      `code ${c.code}${w.errors.length ? ', ' + w.errors.map((e) => e.message).join(', ') : ''}`);
    w.terminate();
  });
  await step('server still up', async () => {
    const w = openClient(url);
    await w.opened;
    w.send('still here');
    const m = await w.next();
    w.close(1000);
    await withTimeout(w.closed, STEP_MS, 'close');
    check('server still serves after the failed connections', same(m, 'still here', false), describe(m));
  });

  const r = await stopChild(srv.child);
  check('echo_server exits 0 on SIGTERM', r.code === 0, `code ${r.code} signal ${r.signal}\n${srv.child.stderrText}`);
}

// ---- Part B: ws as the server for our wscat -------------------------------
function wscatMessages() {
  const m = [];
  const t = (s) => m.push({ data: s, binary: false });
  const b = (buf) => m.push({ data: buf, binary: true });
  t('hello');
  t('héllo wörld €𝄞');
  t('😀 日本語 ÿ');
  t('');                             // empty text
  b(Buffer.alloc(0));               // empty binary
  b(Buffer.from([...Array(256).keys()]));  // every byte value
  t('a\u0000b');                    // NUL inside text
  b(prng(125, 11));
  b(prng(126, 12));
  b(prng(65535, 13));
  b(prng(65536, 14));
  t('x'.repeat(70000));
  b(prng(MiB, 15));                 // 1 MiB
  t('€'.repeat(1000));
  for (let i = 14; i < 20; i++) (i % 2 ? t(`message ${i}`) : b(Buffer.from(`binary ${i}`)));
  return m;
}

async function partB() {
  if (!existsSync(opts.wscat)) {
    console.log(`# SKIP wscat not built (${opts.wscat})`);
    return;
  }
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    maxPayload: 64 * MiB,
    handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false),
  });
  await withTimeout(new Promise((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  }), STEP_MS, 'ws server listening');
  const port = wss.address().port;
  const url = `ws://127.0.0.1:${port}/`;
  diag(`${opts.wscat} --echo against a ws server on ${url}`);

  const connected = withTimeout(new Promise((resolve) => {
    wss.once('connection', (ws, req) => resolve({ ws, req }));
  }), STEP_MS, 'wscat to connect');
  const child = spawnChild(opts.wscat, ['--echo', url, '--subprotocol', 'chat', '-q']);
  try {
    let ws, req;
    try {
      ({ ws, req } = await Promise.race([connected, child.exited.then((r) => {
        throw new Error(`wscat exited before connecting (code ${r.code}, signal ${r.signal}` +
          `${r.error ? ', ' + r.error.message : ''})`);
      })]));
    } catch (e) {
      check('wscat connects', false,
        `${e.message}\nexit: ${child.exitCode}\nstderr: ${child.stderrText}`);
      return;
    }
    check('wscat connects; subprotocol "chat" negotiated', ws.protocol === 'chat',
      `ws.protocol=${JSON.stringify(ws.protocol)} offered=${req.headers['sec-websocket-protocol']}`);

    const queue = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
      const m = { data, isBinary };
      if (waiters.length) waiters.shift()(m);
      else queue.push(m);
    });
    const next = (what) => withTimeout(new Promise((resolve) => {
      if (queue.length) resolve(queue.shift());
      else waiters.push(resolve);
    }), STEP_MS, what);
    const closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });

    await step('wscat echoes 20 messages', async () => {
      const msgs = wscatMessages();
      for (const m of msgs) ws.send(m.data, { binary: m.binary });
      const bad = [];
      for (let i = 0; i < msgs.length; i++) {
        const got = await next(`echo of message ${i}`);
        if (!same(got, msgs[i].data, msgs[i].binary)) bad.push(`#${i}: ${describe(got)}`);
      }
      check(`wscat --echo: ${msgs.length} messages (text, binary, empty, 1 MiB) back identical, in order`,
        bad.length === 0, bad.slice(0, 5).join('\n'));
    });
    await step('wscat: fragmented message', async () => {
      ws.send('frag', { fin: false });
      ws.send('ment-€', { fin: true });
      const m = await next('echo of the fragmented message');
      check('wscat --echo: fragmented text reassembled', same(m, 'fragment-€', false), describe(m));
    });
    await step('wscat: ping', async () => {
      const pong = withTimeout(new Promise((resolve) => ws.once('pong', resolve)), STEP_MS, 'pong');
      ws.ping('srv-ping');
      const p = await pong;
      check('wscat answers a ping with a pong', Buffer.from(p).toString() === 'srv-ping');
    });
    await step('wscat: close 1000', async () => {
      ws.close(1000, 'bye');
      const c = await withTimeout(closed, STEP_MS, 'wscat to answer the close');
      check('wscat answers close 1000 with 1000', c.code === 1000, `code ${c.code}`);
      const r = await withTimeout(child.exited, STEP_MS, 'wscat to exit');
      check('wscat exits 0 after close 1000', r.code === 0,
        `code ${r.code} signal ${r.signal}\nstderr: ${child.stderrText}`);
    });
  } finally {
    child.kill('SIGKILL');
    for (const c of wss.clients) c.terminate();
    wss.close();
  }
}

await partA();
await partB();
finish();
process.exit(process.exitCode);
