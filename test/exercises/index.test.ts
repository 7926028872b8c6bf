import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CorruptFileError, InvalidArgumentError } from '../../lib/errors';
import { allSpecs, isExerciseSpec, loadSpecs, specById, specFiles } from '../../lib/exercises';

const specSource = (id: string) => `export const spec = { id: '${id}', notebook: 'nb', functionName: 'f', title: 't', hint: 'h',
  cases: () => [], reference: () => 0, tolerance: { atol: 0, rtol: 0 }, wrong: {} };
export const helper = () => 1;\n`;

describe('exercises/index (spec discovery)', () => {
  let dir = '';
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spec-index-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('finds only <nn>-<name>.ts modules and collects their ExerciseSpec exports, sorted by id', () => {
    fs.writeFileSync(path.join(dir, '02-b.ts'), specSource('02-y'));
    fs.writeFileSync(path.join(dir, '01-a.ts'), specSource('01-x'));
    fs.writeFileSync(path.join(dir, 'codec.ts'), 'export const x = 1;');
    const files = specFiles(dir);
    expect(files.map((f) => path.basename(f))).to.deep.equal(['01-a.ts', '02-b.ts']);
    expect(loadSpecs(files).map((s) => s.id)).to.deep.equal(['01-x', '02-y']);
  });

  it('rejects a duplicated id and a module that does not load, naming the files', () => {
    fs.writeFileSync(path.join(dir, '01-a.ts'), specSource('01-x'));
    fs.writeFileSync(path.join(dir, '02-b.ts'), specSource('01-x'));
    expect(() => loadSpecs(specFiles(dir))).to.throw(InvalidArgumentError, "exercise id '01-x' is defined twice");
    fs.writeFileSync(path.join(dir, '03-c.ts'), 'throw new Error("broken module");');
    expect(() => loadSpecs([path.join(dir, '03-c.ts')])).to.throw(CorruptFileError, '03-c.ts failed to load: broken module');
  });

  it("the course's specs: unique ids '<nn>-<name>' whose prefix is their notebook's number", () => {
    const specs = allSpecs();
    for (const s of specs) {
      expect(isExerciseSpec(s)).to.equal(true);
      expect(s.id, s.id).to.match(/^\d\d-[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(s.notebook.slice(0, 3), s.id).to.equal(s.id.slice(0, 3));
    }
    if (specs.length > 0) expect(specById(specs[0].id, specs)).to.equal(specs[0]);
    expect(() => specById('99-nope', specs)).to.throw(InvalidArgumentError, 'unknown exercise id');
  });
});
