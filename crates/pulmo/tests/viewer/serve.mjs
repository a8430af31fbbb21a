// Serves the prebuilt OHIF viewer (node_modules/@ohif/app/dist) and Orthanc's DICOMweb API from
// one origin on 127.0.0.1 (Orthanc sends no CORS headers, so OHIF must see DICOMweb same-origin).
//
//   node serve.mjs --orthanc http://127.0.0.1:8042/dicom-web [--port 0]
//
// - /dicom-web/... (GET, POST, with Accept and the other request headers) is forwarded to the
//   --orthanc DICOMweb root; the response is streamed back unchanged.
// - /app-config.js is OHIF's own, patched: the dicomweb data source points at this origin's
//   /dicom-web, staticWado false, qidoSupportsIncludeField true.
// - any other path is a file of dist/, or index.html (single-page app: /viewer?... and the like).
// Prints one line `listening http://127.0.0.1:PORT` on stdout once it accepts connections.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'node_modules', '@ohif', 'app', 'dist');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback === undefined) {
    console.error(`usage: node serve.mjs --orthanc http://127.0.0.1:PORT/dicom-web [--port N]`);
    process.exit(2);
  }
  return fallback;
}

const orthanc = new URL(arg('orthanc').replace(/\/+$/, ''));
const port = Number(arg('port', '0'));
if (!fs.existsSync(path.join(dist, 'index.html'))) {
  console.error(`OHIF is not installed at ${dist}: run scripts/setup (npm ci in ${here})`);
  process.exit(2);
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

// OHIF's shipped app-config.js with its (single, public demo) dicomweb data source re-pointed.
function patchedConfig(origin) {
  const text = fs.readFileSync(path.join(dist, 'app-config.js'), 'utf8');
  const root = `${origin}/dicom-web`;
  const edits = [
    [/wadoUriRoot:\s*'[^']*'/g, `wadoUriRoot: '${root}'`],
    [/qidoRoot:\s*'[^']*'/g, `qidoRoot: '${root}'`],
    [/wadoRoot:\s*'[^']*'/g, `wadoRoot: '${root}'`],
    [/staticWado:\s*true/g, 'staticWado: false'],
    [/qidoSupportsIncludeField:\s*false/g, 'qidoSupportsIncludeField: true'],
  ];
  let out = text;
  for (const [re, to] of edits) {
    if (!re.test(out)) throw new Error(`app-config.js of @ohif/app has no ${re}: its layout changed`);
    out = out.replace(re, to);
  }
  return out;
}

function forward(req, res) {
  const rest = req.url.slice('/dicom-web'.length); // keeps the query string
  const target = new URL(orthanc.pathname + rest, orthanc.origin);
  const headers = { ...req.headers, host: orthanc.host };
  delete headers.origin;
  delete headers.referer;
  const upstream = http.request(target, { method: req.method, headers }, (up) => {
    res.writeHead(up.statusCode, up.headers);
    up.pipe(res);
  });
  upstream.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`DICOMweb upstream ${target}: ${e.message}`);
  });
  req.pipe(upstream);
}

function sendFile(res, file, method) {
  const type = TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream';
  const size = fs.statSync(file).size;
  res.writeHead(200, { 'content-type': type, 'content-length': size, 'cache-control': 'no-cache' });
  if (method === 'HEAD') return res.end();
  fs.createReadStream(file).pipe(res);
}

let config = null;
const server = http.createServer((req, res) => {
  try {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/dicom-web' || url.pathname.startsWith('/dicom-web/')) return forward(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405);
      return res.end();
    }
    if (url.pathname === '/app-config.js') {
      const body = Buffer.from(config);
      res.writeHead(200, { 'content-type': TYPES['.js'], 'content-length': body.length, 'cache-control': 'no-cache' });
      return res.end(req.method === 'HEAD' ? undefined : body);
    }
    const file = path.join(dist, path.normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, ''));
    if (file.startsWith(dist + path.sep) && fs.existsSync(file) && fs.statSync(file).isFile()) {
      return sendFile(res, file, req.method);
    }
    // Single-page app: the router handles /viewer, /segmentation, ... in the browser.
    return sendFile(res, path.join(dist, 'index.html'), req.method);
  } catch (e) {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(e && e.stack ? e.stack : e));
  }
});

server.listen(port, '127.0.0.1', () => {
  const origin = `http://127.0.0.1:${server.address().port}`;
  try {
    config = patchedConfig(origin);
  } catch (e) {
    console.error(String(e.message));
    process.exit(2);
  }
  console.log(`listening ${origin}`);
});
