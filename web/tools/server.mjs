// A small static file server for the page and the browser tests: serves
// directories under URL prefixes on 127.0.0.1 (a secure context, so
// navigator.gpu exists), never outside them.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml',
};

/**
 * Starts serving `mounts` ({ '/': dir, '/ref/': otherDir }; longest prefix
 * wins) on `port` (0: any free port). Resolves to { url, close() }.
 */
export function startServer({ mounts, port = 0, host = '127.0.0.1' }) {
  const entries = Object.entries(mounts).sort((a, b) => b[0].length - a[0].length);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const mount = entries.find(([prefix]) => path.startsWith(prefix));
    if (!mount) return send(res, 404, 'not found');
    const [prefix, dir] = mount;
    const rel = normalize(path.slice(prefix.length) || 'index.html');
    if (rel.startsWith('..') || rel.includes(`${sep}..${sep}`)) return send(res, 403, 'forbidden');
    let file = join(dir, rel);
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      const size = statSync(file).size;
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': size, 'cache-control': 'no-store' });
      createReadStream(file).pipe(res);
    } catch {
      send(res, 404, `not found: ${path}`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve({ url: `http://${host === '127.0.0.1' ? 'localhost' : host}:${address.port}/`, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

function send(res, status, text) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}
