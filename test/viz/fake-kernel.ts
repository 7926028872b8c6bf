// Test helper: make lib/viz believe it runs inside a tslab cell by setting the writer tslab's kernel sets.
/** Pretend to be inside a tslab cell: tslab's kernel sets this writer before running a cell. */
type Msg = { data: Record<string, string>; transient: { display_id?: string } };
export function fakeKernel(): { messages: { msg: Msg; update: boolean }[]; restore(): void } {
  const jupyter = require('tslab/dist/jupyter') as { lastWriteDisplayData: unknown };
  const saved = jupyter.lastWriteDisplayData;
  const messages: { msg: Msg; update: boolean }[] = [];
  jupyter.lastWriteDisplayData = (msg: Msg, update: boolean) => messages.push({ msg, update });
  return { messages, restore: () => void (jupyter.lastWriteDisplayData = saved) };
}

