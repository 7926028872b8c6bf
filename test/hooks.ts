// Mocha root hooks: every test file runs on the backend that lib selects (printed once).
import { initBackend } from '../lib/backend';

process.env.TS_NODE_TRANSPILE_ONLY ??= 'true';

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(120000);
    await initBackend();
  },
};
