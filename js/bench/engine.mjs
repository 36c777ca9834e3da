// The npm package's engine in Node and in Chromium: the time `Engine.push` takes for a whole
// input (policy, enrichment and alerts as `kaudit run`, plus the report store), measured inside
// the JavaScript host (start-up, WebAssembly compilation and reading the file are left out).
//
//   node js/bench/engine.mjs node|chromium <audit.log> [rounds]
//
// Prints one JSON line: the host, each round's milliseconds, the counts `push` returned and the
// text of `reportJson({})` (the caller checks both against the native engine: one engine, the
// same results). Run by plugins/component/benches/hosts.rs (`cargo xtask bench`), which puts
// the figures beside the native library doing the same work. Needs the package built (js/pkg/)
// and, for chromium, Debian's chromium and playwright-core (`cargo xtask setup`).
import { readFileSync } from 'node:fs';

const [host, file, roundsArg] = process.argv.slice(2);
if (!['node', 'chromium'].includes(host) || !file) {
  console.error('usage: node js/bench/engine.mjs node|chromium <audit.log> [rounds]');
  process.exit(2);
}
const rounds = Number(roundsArg || 1);
const input = readFileSync(file);

/** Runs in the page or in Node: `rounds` fresh engines, each given the whole input at once. */
async function measure(Engine, bytes, rounds) {
  const ms = [];
  let counts;
  let report;
  for (let r = 0; r < rounds; r++) {
    const engine = new Engine();
    const start = performance.now();
    counts = engine.push(bytes);
    ms.push(performance.now() - start);
    report = engine.reportJson({});
    engine.free();
  }
  return { ms, counts, report };
}

let result;
if (host === 'node') {
  const { Engine } = await import('../node.js');
  result = await measure(Engine, new Uint8Array(input.buffer, input.byteOffset, input.length), rounds);
} else {
  const { mkdtempSync, rmSync, symlinkSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join, resolve } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const { launchChromium, serve } = await import('../test/helpers.mjs');
  // A served directory with the package, an empty page and the input (a large body handed over
  // through playwright's route API makes the page fail, so the input is fetched over HTTP).
  const jsDir = fileURLToPath(new URL('..', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-bench-'));
  for (const name of ['index.js', 'pkg', 'render']) symlinkSync(join(jsDir, name), join(dir, name));
  symlinkSync(resolve(file), join(dir, 'input'));
  writeFileSync(join(dir, 'bench.html'), '<!doctype html><title>kaudit bench</title>');
  const server = await serve(dir);
  const { context, profile } = await launchChromium();
  try {
    const page = await context.newPage();
    await page.goto(`${server.url}/bench.html`);
    result = await page.evaluate(async ([source, rounds]) => {
      const { Engine } = await import('/index.js');
      const bytes = new Uint8Array(await (await fetch('/input')).arrayBuffer());
      const measure = new Function(`return (${source})`)();
      return measure(Engine, bytes, rounds);
    }, [measure.toString(), rounds]);
  } finally {
    await context.close();
    await server.close();
    rmSync(profile, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(JSON.stringify({ host, ...result }));
