// `npm pack` gives an installable package: the tarball holds the module, the .wasm, the types and
// the renderer, installs into an empty project without the network, and works from there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JS_DIR, SAMPLE, checkPackageBuilt, cliReportJson, sameText } from './helpers.mjs';

const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('npm pack: an installable package that works from node_modules', () => {
  checkPackageBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-pack-'));
  try {
    const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], JS_DIR));
    const files = packed.files.map((f) => f.path).sort();
    for (const f of ['index.js', 'node.js', 'index.d.ts', 'package.json', 'README.md', 'render/render.js', 'render/render.css',
      'render/render.d.ts', 'pkg/kaudit_js.js', 'pkg/kaudit_js.d.ts', 'pkg/kaudit_js_bg.wasm']) {
      assert.ok(files.includes(f), `${f} is in the package (${files.join(', ')})`);
    }
    assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('demo/') || f.startsWith('src/') || f.startsWith('node_modules/')), files.join(', '));
    const project = join(dir, 'app');
    execFileSync('mkdir', ['-p', project]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    npm(['install', '--offline', '--no-audit', '--no-fund', join(dir, packed.filename)], project);
    writeFileSync(join(project, 'main.mjs'), `
      import { Engine, renderReport } from 'kaudit';
      import { readFileSync } from 'node:fs';
      const e = new Engine();
      e.push(readFileSync(${JSON.stringify(SAMPLE)}));
      process.stdout.write(typeof renderReport + '\\n' + e.reportJson({ last: 'all' }));
    `);
    const [kind, json] = execFileSync('node', ['main.mjs'], { cwd: project, encoding: 'utf8' }).split('\n');
    assert.equal(kind, 'function');
    sameText(json, cliReportJson([SAMPLE], { last: 'all' }), 'report from the installed package');
    const pkg = JSON.parse(readFileSync(join(project, 'node_modules', 'kaudit', 'package.json'), 'utf8'));
    assert.equal(pkg.name, 'kaudit');
    assert.equal(pkg.exports['.'].types, './index.d.ts');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
