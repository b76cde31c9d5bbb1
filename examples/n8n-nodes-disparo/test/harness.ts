/**
 * A small stand-in for n8n's execution context (IExecuteFunctions): the parts the Disparo node uses.
 * Parameters are given as n8n stores them after evaluation: a plain value for every item, or a function
 * of the item (what an expression such as `{{ $json.telefone }}` evaluates to for that item).
 */
import type { ICredentialDataDecryptedObject, IDataObject, IExecuteFunctions, INode, INodeExecutionData, Logger } from 'n8n-workflow';
import { Disparo } from '../nodes/Disparo/Disparo.node.js';

export type Param = unknown | ((item: IDataObject, index: number) => unknown);

export interface RunOptions {
  params: Record<string, Param>;
  items?: IDataObject[];
  credentials: ICredentialDataDecryptedObject;
  continueOnFail?: boolean;
}

const node: INode = {
  id: 'c0ffee00-0000-4000-8000-000000000001',
  name: 'Disparo',
  type: 'n8n-nodes-disparo.disparo',
  typeVersion: 1,
  position: [0, 0],
  parameters: {},
};

const quiet: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} } as unknown as Logger;

export function executeContext(options: RunOptions): IExecuteFunctions {
  const items: INodeExecutionData[] = (options.items ?? [{}]).map((json) => ({ json }));
  const resolve = (name: string, index: number): unknown => {
    // Dotted names reach into collections, as n8n does: 'variables.variable'.
    const [head, ...rest] = name.split('.');
    let value: unknown = options.params[head!];
    if (typeof value === 'function') value = (value as (item: IDataObject, index: number) => unknown)(items[index]!.json, index);
    for (const key of rest) value = value === undefined || value === null ? undefined : (value as Record<string, unknown>)[key];
    return value;
  };
  const context = {
    getInputData: () => items,
    getNode: () => node,
    getNodeParameter: (name: string, index: number, fallback?: unknown) => {
      const value = resolve(name, index);
      if (value !== undefined) return value;
      if (fallback !== undefined) return fallback;
      throw new Error(`Could not get parameter "${name}"`);
    },
    getCredentials: async (type: string) => {
      if (type !== 'disparoApi') throw new Error(`unexpected credential type ${type}`);
      return options.credentials;
    },
    continueOnFail: () => options.continueOnFail ?? false,
    logger: quiet,
  };
  return context as unknown as IExecuteFunctions;
}

/** Run the node's execute() like n8n does: `this` is the execution context. */
export async function execute(options: RunOptions): Promise<INodeExecutionData[]> {
  const out = await new Disparo().execute.call(executeContext(options));
  return out[0]!;
}
