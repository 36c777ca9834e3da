// The demo's Web Worker: owns the kaudit Engine so reading a large file and computing reports
// never block the page. Files are read in 4 MiB slices and fed with pushChunk (records cut by a
// slice boundary wait for the next slice); progress is posted after every slice.
//
// The engine module is imported dynamically so that `onmessage` is installed synchronously:
// with a static import, the package's top-level await (WebAssembly instantiation) would delay
// the handler and messages posted meanwhile could be lost.
const loading = import('../index.js');

const CHUNK = 4 << 20;
let engine = null;

async function load(message) {
  const { Engine } = await loading;
  engine?.free();
  engine = new Engine();
  const started = performance.now();
  let blob = message.file;
  if (!blob) {
    const response = await fetch(message.url);
    if (!response.ok) throw new Error(`${message.url}: HTTP ${response.status}`);
    blob = await response.blob();
  }
  const total = blob.size;
  for (let offset = 0; offset < total; offset += CHUNK) {
    const bytes = new Uint8Array(await blob.slice(offset, offset + CHUNK).arrayBuffer());
    const counts = engine.pushChunk(bytes);
    postMessage({ type: 'progress', loaded: Math.min(total, offset + CHUNK), total, counts });
  }
  const counts = engine.finish();
  postMessage({ type: 'loaded', name: message.name, counts, total, ms: performance.now() - started, memory: engine.memoryBytes() });
}

onmessage = async (event) => {
  const m = event.data;
  try {
    if (m.type === 'load') {
      await load(m);
    } else if (m.type === 'report') {
      if (!engine) throw new Error('no input loaded');
      const started = performance.now();
      const report = engine.report(m.filter);
      postMessage({ type: 'report', id: m.id, report, ms: performance.now() - started });
    }
  } catch (e) {
    postMessage({ type: 'error', id: m.id, message: String(e?.message ?? e) });
  }
};
