// Shared helpers for the Node interop tests (ws_interop.mjs and
// ../browser_test.mjs): TAP output, starting examples/echo_server on a
// free 127.0.0.1 port, timeouts, and the WS_REQUIRE_PEERS=1 rule.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const results = [];
const children = new Set();

export function check(name, cond, detail) {
  results.push(Boolean(cond));
  console.log(`${cond ? 'ok' : 'not ok'} ${results.length} - ${name}`);
  if (!cond && detail !== undefined)
    console.log('#   ' + String(detail).replace(/\n/g, '\n#   '));
  return Boolean(cond);
}

// A check for a known, reported libws bug: TAP "# TODO", so a failure is
// printed but not counted (set WS_STRICT_TODO=1 to count it). When it
// starts passing the line says so: remove the TODO then.
export function checkTodo(name, cond, detail, why) {
  if (process.env.WS_STRICT_TODO === '1') return check(name, cond, detail);
  results.push(true);
  const n = results.length;
  if (cond) {
    console.log(`ok ${n} - ${name} # TODO ${why} (passes now: make it a plain check)`);
  } else {
    console.log(`not ok ${n} - ${name} # TODO ${why}`);
    if (detail !== undefined)
      console.log('#   ' + String(detail).replace(/\n/g, '\n#   '));
  }
  return Boolean(cond);
}

export function diag(msg) {
  console.log('# ' + String(msg).replace(/\n/g, '\n# '));
}

// A missing peer: SKIP (passes), unless WS_REQUIRE_PEERS=1 (fails).
export function skipOrFail(what) {
  if (process.env.WS_REQUIRE_PEERS === '1')
    check(`${what} (WS_REQUIRE_PEERS=1)`, false);
  else
    console.log(`# SKIP ${what}`);
}

export function finish() {
  killChildren();
  const failed = results.filter((r) => !r).length;
  console.log(`1..${results.length}`);
  console.log(`${results.length - failed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
  return failed;
}

export function killChildren() {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  children.clear();
}

// Whole-script bound: print what we have, count a failure, exit 1.
export function overallTimeout(ms, name) {
  const t = setTimeout(() => {
    check(`${name}: finished within ${ms / 1000} s`, false);
    finish();
    process.exit(1);
  }, ms);
  t.unref();
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      killChildren();
      process.exit(1);
    });
  }
  process.on('exit', killChildren);
}

export function withTimeout(promise, ms, what) {
  let t;
  const timer = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timer]).finally(() => clearTimeout(t));
}

export function spawnChild(exe, args, opts = {}) {
  const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  children.add(child);
  child.stdoutText = '';
  child.stderrText = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d) => { child.stdoutText += d; });
  child.stderr.on('data', (d) => { child.stderrText += d; });
  child.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (err) => resolve({ code: null, signal: null, error: err }));
  });
  return child;
}

// Start echo_server with --port 0 and read the port back from its
// "listening on 127.0.0.1:PORT" line (no free-port race).
export async function startEchoServer(exe) {
  if (!existsSync(exe)) throw new Error(`${exe} not found (run make first)`);
  const child = spawnChild(exe, ['--host', '127.0.0.1', '--port', '0', '--quiet']);
  const port = await withTimeout(new Promise((resolve, reject) => {
    const look = () => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(child.stdoutText + child.stderrText);
      if (m) resolve(Number(m[1]));
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.exited.then(({ code, signal, error }) => reject(new Error(
      `${exe} exited before listening (code ${code}, signal ${signal}` +
      `${error ? ', ' + error.message : ''}): ${child.stderrText}`)));
  }), 10000, `${exe} to print 'listening on'`);
  return { child, port };
}

export async function stopChild(child) {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 3000);
  const r = await child.exited;
  clearTimeout(t);
  children.delete(child);
  return r;
}

// Deterministic pseudo-random bytes (a failure reproduces exactly).
export function prng(n, seed = 12345) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
