// kaudit for browsers and bundlers: loads the WebAssembly engine next to this file (top-level
// await), then exports the engine and the report renderer. Node uses node.js instead (same API).
import init, { Engine } from './pkg/kaudit_js.js';

await init({ module_or_path: new URL('./pkg/kaudit_js_bg.wasm', import.meta.url) });

export { Engine };
export { renderReport, formatCount, TABS } from './render/render.js';
