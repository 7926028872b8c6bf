/**
 * Value <-> JSON, so that exercise arguments and results can cross a process boundary (the grader's child processes).
 *
 * Encoding:
 *   tensor            -> { "__tensor": { "shape": [...], "dtype": "float32", "data": [...] } }   (flat, row-major)
 *   NaN / ±Infinity   -> { "__number": "NaN" | "Infinity" | "-Infinity" }  (JSON has no such numbers);
 *                        inside tensor data the same strings stand in for the element.
 *   anything that is not a Value (undefined, a function, a Promise, a class instance …), only when `lenient`:
 *                     -> { "__unsupported": "<description>" }, decoded to an UnsupportedValue so that the checker can
 *                        say what the learner returned instead of crashing.
 * Plain objects may not use the reserved keys above.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors';
import type { Value } from './types';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const RESERVED = ['__tensor', '__number', '__unsupported'];

/** Stand-in for a returned thing that is not a Value (decoded from `__unsupported`). */
export class UnsupportedValue {
  constructor(readonly description: string) {}
}

/** Duck-typed tensor test: works across tfjs copies and does not need tfjs loaded. */
export function isTensor(x: unknown): x is tf.Tensor {
  if (typeof x !== 'object' || x === null) return false;
  const t = x as { shape?: unknown; dtype?: unknown; dataSync?: unknown };
  return Array.isArray(t.shape) && typeof t.dtype === 'string' && typeof t.dataSync === 'function';
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** A short human description of any JS value, for messages ("a float32 tensor of shape [2,3]", "undefined" …). */
export function describeValue(x: unknown): string {
  if (x === undefined) return 'undefined';
  if (x === null) return 'null';
  if (x instanceof UnsupportedValue) return x.description;
  if (isTensor(x)) return `a ${x.dtype} tensor of shape [${x.shape.join(',')}]`;
  if (typeof x === 'number') return `the number ${x}`;
  if (typeof x === 'boolean') return `the boolean ${x}`;
  if (typeof x === 'string') return `the string ${JSON.stringify(x.length > 40 ? x.slice(0, 40) + '…' : x)}`;
  if (typeof x === 'function') return 'a function';
  if (typeof x === 'bigint') return `the bigint ${x}`;
  if (typeof x === 'symbol') return 'a symbol';
  if (Array.isArray(x)) return `an array of length ${x.length}`;
  if (typeof (x as { then?: unknown }).then === 'function') {
    return 'a Promise (the function must be synchronous: use dataSync()/arraySync(), not await)';
  }
  if (x instanceof Float32Array || x instanceof Int32Array || x instanceof Uint8Array || x instanceof Float64Array) {
    return `a ${x.constructor.name} of length ${x.length} (return a plain number[] or a tensor)`;
  }
  if (isPlainObject(x)) return `an object with keys {${Object.keys(x).join(', ')}}`;
  const name = (x as object).constructor?.name ?? 'unknown';
  return `an instance of ${name} (only numbers, booleans, strings, tensors, arrays and plain objects can be checked)`;
}

function encodeNumber(n: number): Json {
  if (Number.isFinite(n)) return n;
  return { __number: Number.isNaN(n) ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity' };
}

function decodeNumberString(s: string): number {
  if (s === 'NaN') return NaN;
  if (s === 'Infinity') return Infinity;
  if (s === '-Infinity') return -Infinity;
  throw new InvalidArgumentError(`codec: unknown number encoding ${JSON.stringify(s)}; expected NaN, Infinity or -Infinity`);
}

export interface EncodeOptions {
  /** Encode things that are not Values as { __unsupported } instead of throwing (used for learners' results). */
  lenient?: boolean;
}

/**
 * Encode a Value as JSON-safe data. Reads tensors with dataSync (the tensor is not disposed).
 * Throws InvalidArgumentError for non-Values unless `lenient`.
 */
export function encodeValue(v: unknown, opts: EncodeOptions = {}, path = 'value'): Json {
  const unsupported = (why: string): Json => {
    if (opts.lenient) return { __unsupported: why };
    throw new InvalidArgumentError(`codec: ${path} is ${why}; expected a Value (number, boolean, string, null, tensor, array or plain object)`);
  };
  if (v === null) return null;
  if (typeof v === 'number') return encodeNumber(v);
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  if (isTensor(v)) {
    let data: ArrayLike<number | string>;
    try {
      data = v.dataSync() as ArrayLike<number | string>;
    } catch (e) {
      return unsupported(`a tensor that cannot be read (${(e as Error).message})`);
    }
    const out: Json[] = new Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const d = data[i];
      out[i] = typeof d === 'number' && !Number.isFinite(d) ? (encodeNumber(d) as { __number: string }).__number : (d as Json);
    }
    return { __tensor: { shape: [...v.shape], dtype: v.dtype, data: out } };
  }
  if (Array.isArray(v)) return v.map((x, i) => encodeValue(x, opts, `${path}[${i}]`));
  if (isPlainObject(v)) {
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) {
      if (RESERVED.includes(k)) {
        throw new InvalidArgumentError(`codec: ${path} uses the reserved key ${k}; rename it (reserved: ${RESERVED.join(', ')})`);
      }
      out[k] = encodeValue(x, opts, `${path}.${k}`);
    }
    return out;
  }
  return unsupported(describeValue(v));
}

/** Decode what encodeValue produced. Creates tensors: the caller owns them (disposeValue). */
export function decodeValue(j: Json, path = 'value'): Value {
  if (j === null || typeof j === 'number' || typeof j === 'boolean' || typeof j === 'string') return j;
  if (Array.isArray(j)) return j.map((x, i) => decodeValue(x, `${path}[${i}]`));
  if (typeof j !== 'object') throw new InvalidArgumentError(`codec: ${path} is not JSON data`);
  const keys = Object.keys(j);
  if (keys.length === 1 && keys[0] === '__number') return decodeNumberString(String(j.__number));
  if (keys.length === 1 && keys[0] === '__unsupported') {
    return new UnsupportedValue(String(j.__unsupported)) as unknown as Value;
  }
  if (keys.length === 1 && keys[0] === '__tensor') {
    const t = j.__tensor as { shape?: unknown; dtype?: unknown; data?: unknown };
    if (!Array.isArray(t.shape) || !t.shape.every((s) => Number.isInteger(s) && (s as number) >= 0)) {
      throw new InvalidArgumentError(`codec: ${path}.__tensor.shape must be an array of non-negative integers`);
    }
    if (!['float32', 'int32', 'bool', 'string', 'complex64'].includes(String(t.dtype)) || t.dtype === 'complex64') {
      throw new InvalidArgumentError(`codec: ${path}.__tensor.dtype ${JSON.stringify(t.dtype)} is not one of float32, int32, bool, string`);
    }
    const shape = t.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    if (!Array.isArray(t.data) || t.data.length !== size) {
      throw new InvalidArgumentError(`codec: ${path}.__tensor.data must hold ${size} elements for shape [${shape.join(',')}]`);
    }
    const dtype = t.dtype as 'float32' | 'int32' | 'bool' | 'string';
    if (dtype === 'string') return tf.tensor(t.data.map(String), shape, 'string');
    const data = (t.data as Json[]).map((d) => (typeof d === 'string' ? decodeNumberString(d) : Number(d)));
    return tf.tensor(data, shape, dtype);
  }
  const out: { [k: string]: Value } = {};
  for (const [k, x] of Object.entries(j)) out[k] = decodeValue(x, `${path}.${k}`);
  return out;
}

/** Every tensor inside a (nested) value. */
export function tensorsIn(v: unknown, into: tf.Tensor[] = []): tf.Tensor[] {
  if (isTensor(v)) into.push(v);
  else if (Array.isArray(v)) v.forEach((x) => tensorsIn(x, into));
  else if (isPlainObject(v)) Object.values(v).forEach((x) => tensorsIn(x, into));
  return into;
}

/** Dispose every tensor inside a value (safe on already-disposed tensors). */
export function disposeValue(v: unknown): void {
  for (const t of tensorsIn(v)) {
    if (!(t as { isDisposed?: boolean }).isDisposed) t.dispose();
  }
}

/**
 * Copy arrays and plain objects (tensors are shared; they are immutable), so that a function that mutates its
 * arguments cannot change what the next call — or the reference — sees.
 */
export function cloneArgs<T>(v: T): T {
  if (Array.isArray(v)) return v.map((x) => cloneArgs(x)) as T;
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = cloneArgs(x);
    return out as T;
  }
  return v;
}
