import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { inTslab, show } from '../../lib/viz/display';
import { fakeKernel } from './fake-kernel';

describe('viz/display', () => {
  it('outside tslab: show() writes the file when asked and otherwise does nothing', () => {
    expect(inTslab()).to.equal(false);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'show-'));
    const file = path.join(dir, 'sub', 'x.png');
    const bytes = Buffer.from([1, 2, 3]);
    show(bytes);
    expect(fs.existsSync(file)).to.equal(false);
    show(bytes, { path: file });
    expect(fs.readFileSync(file).equals(bytes)).to.equal(true);
    fs.rmSync(dir, { recursive: true });
  });

  it('inside tslab: show() sends image/png (base64) to the cell', () => {
    const k = fakeKernel();
    try {
      expect(inTslab()).to.equal(true);
      show(Buffer.from([137, 80, 78, 71]));
      expect(k.messages).to.have.length(1);
      expect(k.messages[0].msg.data['image/png']).to.equal(Buffer.from([137, 80, 78, 71]).toString('base64'));
    } finally {
      k.restore();
    }
    expect(inTslab()).to.equal(false);
  });
});

