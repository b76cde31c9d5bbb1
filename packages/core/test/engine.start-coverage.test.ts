import { describe, expect, it } from 'vitest';
import { ValidationError } from '@disparo/core';
import { phones, rig } from './helpers.js';

describe('start refuses a campaign whose template no pending recipient can render', () => {
  const setup = async (withName: number[], n: number) => {
    const r = rig();
    const c = await r.engine.createCampaign({ name: 't', template: 'Oi {{name}}, seu código é {{code|0000}}', accountIds: ['a1'], batchSize: 5_000 });
    await r.engine.addRecipients(
      c.id,
      phones(n).map((phone, i) => ({ phone, vars: withName.includes(i) ? { name: `n${i}` } : {} })),
    );
    return { r, c };
  };

  it('names the variable no recipient has, and allowAllSkipped starts it anyway', async () => {
    const { r, c } = await setup([], 30);
    const error = await r.engine.start(c.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).message).toContain('{{name}}');
    expect((error as ValidationError).message).not.toContain('{{code}}'); // it has a default
    expect((await r.engine.getCampaign(c.id))?.status).toBe('draft');
    expect((await r.engine.start(c.id, { allowAllSkipped: true })).status).toBe('running');
  });

  it('starts when one recipient far down the list renders (the search reads past its first pages)', async () => {
    for (const at of [0, 25, 1_500]) {
      const { r, c } = await setup([at], 1_600);
      expect((await r.engine.start(c.id)).status).toBe('running');
    }
  });
});
