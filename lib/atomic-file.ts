/**
 * Atomic file writes for everything lib persists (dataset cache, checkpoints, raw samples): the bytes go to a temp file
 * beside the target, are fsynced, then renamed over it, so an interrupted write never leaves a half-written target.
 */
import * as fs from 'fs';
import * as path from 'path';

export function writeFileAtomic(file: string, data: Uint8Array | string): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } finally {
    // a write that throws (disk full …) leaves no temp file; one killed mid-write can, and readers never look at it
    if (fs.existsSync(tmp)) fs.rmSync(tmp);
  }
  try {
    const dfd = fs.openSync(dir, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    // some file systems refuse fsync on a folder; the rename itself is still atomic
  }
}
