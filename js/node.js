// kaudit for Node: reads the WebAssembly engine from the package directory synchronously, then
// exports the same API as index.js (the renderer needs a DOM, e.g. jsdom, to draw).
import { readFileSync } from 'node:fs';
import { initSync, Engine } from './pkg/kaudit_js.js';

initSync({ module: readFileSync(new URL('./pkg/kaudit_js_bg.wasm', import.meta.url)) });

export { Engine };
export { renderReport, formatCount, TABS } from './render/render.js';
