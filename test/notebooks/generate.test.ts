import { expect } from 'chai';
import { InvalidArgumentError } from '../../lib/errors';
import {
  findExercises, isLearnerNotebook, normalizeSolution, stubLine, stubSolutionRegions, toLearner,
} from '../../lib/notebook/generate';
import { Notebook, NotebookCell, cellSource, emptyNotebook, parseNotebook, serializeNotebook, splitSource } from '../../lib/notebook/ipynb';

const FILE = 'solutions/01-demo.ipynb';

function code(src: string, tags: string[] = [], extra: Record<string, unknown> = {}): NotebookCell {
  return {
    cell_type: 'code', metadata: { ...(tags.length ? { tags } : {}), ...extra } as NotebookCell['metadata'],
    source: splitSource(src), outputs: [{ output_type: 'stream', name: 'stdout', text: 'stale\n' }], execution_count: 7,
  };
}
function md(src: string): NotebookCell {
  return { cell_type: 'markdown', metadata: {}, source: splitSource(src) };
}

const EXERCISE = [
  '// EXERCISE 01-q-sample: the closed form',
  '// Return sqrt(abar) x0 + sqrt(1 - abar) eps.',
  'function qSample(x0: number, abar: number, eps: number): number {',
  '  // your code here',
  '  // BEGIN SOLUTION',
  '  const a = Math.sqrt(abar);',
  '  return a * x0 + Math.sqrt(1 - abar) * eps;',
  '  // END SOLUTION',
  '}',
].join('\n');

function demo(exercise = EXERCISE): Notebook {
  const nb = emptyNotebook();
  nb.cells = [
    md('# Demo\nMarkers are written `// BEGIN SOLUTION` in prose too.'),
    code('const x = 1;\nx'),
    code(exercise, ['exercise'], { exercise: { id: '01-q-sample' } }),
    md('Check it:'),
    code("selfCheck(qSampleSpec, qSample);", ['selfcheck']),
  ];
  return nb;
}

describe('notebook generator', () => {
  it('replaces the solution region by the stub and keeps signature and comments', () => {
    const learner = toLearner(demo(), FILE);
    const src = cellSource(learner.cells[2]);
    expect(src).to.equal([
      '// EXERCISE 01-q-sample: the closed form',
      '// Return sqrt(abar) x0 + sqrt(1 - abar) eps.',
      'function qSample(x0: number, abar: number, eps: number): number {',
      '  // your code here',
      "  throw new Error('Exercise 01-q-sample is not implemented yet (TODO)');",
      '}',
    ].join('\n'));
    expect(src).not.to.contain('Math.sqrt(abar)');
    // Cells other than the exercise are unchanged.
    expect(cellSource(learner.cells[1])).to.equal('const x = 1;\nx');
    expect(cellSource(learner.cells[0])).to.equal(cellSource(demo().cells[0]));
  });

  it('replaces several regions in one cell, each at its own indentation', () => {
    const src = 'a\n    // BEGIN SOLUTION\n    b\n    // END SOLUTION\nc\n// BEGIN SOLUTION\nd\n// END SOLUTION';
    expect(stubSolutionRegions(src, '01-x', 'here')).to.equal(`a\n    ${stubLine('01-x')}\nc\n${stubLine('01-x')}`);
  });

  it('strips outputs and execution counts from learner and normalized solution notebooks', () => {
    for (const nb of [toLearner(demo(), FILE), normalizeSolution(demo(), FILE)]) {
      for (const cell of nb.cells.filter((c) => c.cell_type === 'code')) {
        expect(cell.outputs).to.deep.equal([]);
        expect(cell.execution_count).to.equal(null);
      }
    }
    const solution = normalizeSolution(demo(), FILE);
    expect(cellSource(solution.cells[2])).to.equal(EXERCISE); // the solution keeps its code
    expect(isLearnerNotebook(solution)).to.equal(false);
    expect(isLearnerNotebook(toLearner(demo(), FILE))).to.equal(true);
  });

  it('is deterministic and idempotent (generate from the normalized solution gives the same bytes)', () => {
    const once = serializeNotebook(toLearner(demo(), FILE));
    const again = serializeNotebook(toLearner(parseNotebook(serializeNotebook(normalizeSolution(demo(), FILE)), FILE), FILE));
    expect(again).to.equal(once);
    expect(once.endsWith('}\n')).to.equal(true);
    // Keys are sorted: "cell_type" comes before "id" before "metadata" in every cell.
    const firstCell = once.slice(once.indexOf('"cells"'));
    expect(firstCell.indexOf('"cell_type"')).to.be.lessThan(firstCell.indexOf('"id"'));
    expect(firstCell.indexOf('"id"')).to.be.lessThan(firstCell.indexOf('"metadata"'));
  });

  it('lists exercises with their self-check cell', () => {
    expect(findExercises(demo(), FILE)).to.deep.equal([
      { id: '01-q-sample', title: 'the closed form', cellIndex: 2, selfCheckIndex: 4 },
    ]);
  });

  describe('malformed markers are clear errors', () => {
    const cases: [string, () => Notebook, RegExp][] = [
      ['unclosed region', () => demo(EXERCISE.replace('  // END SOLUTION\n', '')), /cell 3: '\/\/ BEGIN SOLUTION' is never closed/],
      ['END without BEGIN', () => demo(EXERCISE.replace('  // BEGIN SOLUTION\n', '')), /line \d+: '\/\/ END SOLUTION' without a preceding/],
      ['nested BEGIN', () => demo(EXERCISE.replace('  const a', '  // BEGIN SOLUTION\n  const a')), /nested '\/\/ BEGIN SOLUTION'/],
      ['misspelt marker', () => demo(EXERCISE.replace('// END SOLUTION', '// end solution')), /malformed marker/],
      ['no region', () => demo(EXERCISE.replace(/ *\/\/ (BEGIN|END) SOLUTION\n/g, '')), /has no '\/\/ BEGIN SOLUTION'/],
      ['bad id', () => demo(EXERCISE.replace('01-q-sample', 'qSample')), /exercise id 'qSample' should look like/],
      ['id of another notebook', () => demo(EXERCISE.replace('01-q-sample', '02-q-sample')), /should start with this notebook's number '01-'/],
      ['no self-check', () => { const nb = demo(); nb.cells.pop(); return nb; }, /must be followed by a code cell tagged "selfcheck"/],
      ['markers outside an exercise', () => { const nb = demo(); nb.cells[1] = code('// BEGIN SOLUTION\nx\n// END SOLUTION'); return nb; }, /cell 2: solution markers outside an exercise cell/],
      ['missing tag', () => { const nb = demo(); nb.cells[2].metadata = { exercise: { id: '01-q-sample' } }; return nb; }, /lacks the "exercise" tag/],
      ['metadata id mismatch', () => { const nb = demo(); nb.cells[2].metadata.exercise = { id: '01-other' }; return nb; }, /metadata.exercise.id should be '01-q-sample'/],
    ];
    for (const [name, make, pattern] of cases) {
      it(name, () => {
        expect(() => toLearner(make(), FILE)).to.throw(InvalidArgumentError, pattern);
      });
    }
    it('duplicate ids', () => {
      const nb = demo();
      nb.cells.push(nb.cells[2], nb.cells[4]);
      expect(() => toLearner(nb, FILE)).to.throw(InvalidArgumentError, /used twice/);
    });
  });

  it('splitSource / cellSource round-trip', () => {
    for (const text of ['', 'a', 'a\n', 'a\nb', 'a\n\nb\n']) {
      const lines = splitSource(text);
      expect(lines.join('')).to.equal(text);
      lines.slice(0, -1).forEach((l) => expect(l.endsWith('\n')).to.equal(true));
    }
  });
});
