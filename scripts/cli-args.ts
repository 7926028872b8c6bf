// The command-line walk the CLIs share: each word in turn, and `value(flag)` for a flag's argument.
import { InvalidArgumentError } from '../lib/errors';

export class ArgList {
  private i = 0;
  constructor(private readonly argv: readonly string[]) {}

  /** The next word, or undefined after the last. */
  next(): string | undefined {
    return this.argv[this.i++];
  }

  /** The word after `flag`: its value, which must be there. */
  value(flag: string): string {
    const v = this.argv[this.i++];
    if (v === undefined) throw new InvalidArgumentError(`${flag} needs a value`);
    return v;
  }
}
