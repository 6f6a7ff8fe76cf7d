import { describe, expect, it } from 'vitest';
import { sameValue } from './canonical.js';

describe('sameValue (how a replica tells a duplicate from a conflicting event)', () => {
  it('equates equal values however their keys are ordered, and treats undefined fields as absent', () => {
    expect(sameValue({ a: 1, b: { c: [1, 'x', null] } }, { b: { c: [1, 'x', null] }, a: 1 })).toBe(true);
    expect(sameValue({ a: 1, gone: undefined }, { a: 1 })).toBe(true);
    expect(sameValue({ a: 1 }, { a: 1, gone: undefined })).toBe(true);
    expect(sameValue(new Uint8Array([1, 2]), Buffer.from([1, 2]))).toBe(true);
  });

  it('tells apart values that differ anywhere', () => {
    expect(sameValue({ a: 1 }, { a: 2 })).toBe(false);
    expect(sameValue({ a: 1 }, { a: 1, b: 0 })).toBe(false);
    expect(sameValue({ a: 1, b: 0 }, { a: 1 })).toBe(false);
    expect(sameValue({ a: { b: [1, 2] } }, { a: { b: [1, 2, 3] } })).toBe(false);
    expect(sameValue([1, 2], { 0: 1, 1: 2 })).toBe(false);
    expect(sameValue(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(sameValue(new Uint8Array([1]), [1])).toBe(false);
    expect(sameValue(null, {})).toBe(false);
    expect(sameValue('1', 1)).toBe(false);
  });
});
