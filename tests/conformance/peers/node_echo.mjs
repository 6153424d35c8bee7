#!/usr/bin/env node
// Echo server on the Node `ws` package (tests/interop/node/node_modules),
// a reference peer for the conformance runner:
//
//   node node_echo.mjs [--port N]     (0 or nothing: a free port)
//
// Same contract as examples/echo_server: echoes text as text and binary as
// binary, answers pings (ws does it itself), messages up to 16 MiB, no
// compression; prints "listening on 127.0.0.1:PORT" once ready; SIGTERM or
// SIGINT stops it.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../interop/node/package.json'));
const { WebSocketServer } = require('ws');
const wsVersion = require('ws/package.json').version;

const i = process.argv.indexOf('--port');
const port = i > 0 ? Number(process.argv[i + 1]) : 0;
const wss = new WebSocketServer({
  host: '127.0.0.1', port, maxPayload: 16 * 1024 * 1024,
  perMessageDeflate: false,
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => {
  console.log(`listening on 127.0.0.1:${wss.address().port} (ws ${wsVersion})`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { wss.close(); for (const c of wss.clients) c.terminate(); process.exit(0); });
}
