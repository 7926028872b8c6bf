import { expect } from 'chai';
import { columnAlignment, showTable, tableHtml, tableText } from '../../lib/viz/table';
import { InvalidArgumentError, ShapeMismatchError } from '../../lib/errors';
import { fakeKernel } from './fake-kernel';

describe('viz/table', () => {
  const columns = ['sampler', 'model calls', 'accuracy', 'note'];
  const rows = [
    ['DDIM', 10, '97.5 %', 'a <b> & "c"'],
    ['DPM-Solver++(2M)', 25, '−1.5 %', ''],
  ];

  it('aligns number-like columns right and text left, unless told otherwise', () => {
    expect(columnAlignment(rows, { columns })).to.deep.equal(['left', 'right', 'right', 'left']);
    expect(columnAlignment(rows, { columns, align: ['right', 'left', 'left', 'right'] })).to.deep.equal(['right', 'left', 'left', 'right']);
    expect(columnAlignment([['x', '1.2e-3 s', '12 ms', '3.0×']], { columns })).to.deep.equal(['left', 'right', 'right', 'right']);
    expect(columnAlignment([], { columns })).to.deep.equal(['left', 'left', 'left', 'left']);
  });

  it('HTML: escaped text, every cell aligned by an inline style, the caption above', () => {
    const html = tableHtml(rows, { columns, caption: 'n = 50 <per point>' });
    expect(html).to.contain('a &lt;b&gt; &amp; &quot;c&quot;');
    expect(html).to.contain('n = 50 &lt;per point&gt;');
    expect(html.indexOf('n = 50')).to.be.lessThan(html.indexOf('<table'));
    expect(html).not.to.contain('<b>');
    expect((html.match(/<t[hd] style="text-align:(left|right)/g) ?? []).length).to.equal(4 * 3);
    expect(html).to.contain('<td style="text-align:right;padding:2px 10px;white-space:nowrap">25</td>');
  });

  it('plain text: columns padded to their widest cell (by characters), a rule under the header', () => {
    const text = tableText([['a', 1], ['ᾱ_t', 100]], { columns: ['x', 'n'] });
    expect(text.split('\n')).to.deep.equal(['x      n', '───  ───', 'a      1', 'ᾱ_t  100']);
    expect(tableText([['a', 1]], { columns: ['x', 'n'], caption: 'cap' }).split('\n')[0]).to.equal('cap');
  });

  it('rejects ragged rows, bad cells and bad alignments with named errors', () => {
    expect(() => tableText([['a']], { columns: ['x', 'y'] })).to.throw(ShapeMismatchError, 'row 0 has 1 cells, expected 2');
    expect(() => tableText([['a', {} as unknown as string]], { columns: ['x', 'y'] })).to.throw(InvalidArgumentError, 'cell [0, 1]');
    expect(() => tableText([], { columns: [] })).to.throw(InvalidArgumentError, 'at least one column');
    expect(() => tableText([['a']], { columns: ['x'], align: ['center' as 'left'] })).to.throw(InvalidArgumentError, "'left' or 'right'");
    expect(() => tableText([['a']], { columns: ['x'], align: ['left', 'left'] })).to.throw(ShapeMismatchError, '2 alignments for 1 columns');
  });

  it('inside tslab: one output with text/html and its text/plain twin; outside: the text is printed', () => {
    const k = fakeKernel();
    try {
      showTable(rows, { columns });
      expect(k.messages).to.have.length(1);
      expect(Object.keys(k.messages[0].msg.data).sort()).to.deep.equal(['text/html', 'text/plain']);
      expect(k.messages[0].msg.data['text/plain']).to.equal(tableText(rows, { columns }));
      expect(k.messages[0].update).to.equal(false);
    } finally {
      k.restore();
    }
    const printed: string[] = [];
    const log = console.log;
    console.log = (s: string) => void printed.push(s);
    try {
      showTable(rows, { columns });
    } finally {
      console.log = log;
    }
    expect(printed).to.deep.equal([tableText(rows, { columns })]);
  });
});
