import { describe, expect, it } from 'vitest';
import { closestMatch, editDistance } from './similar.js';

describe('editDistance', () => {
  it.each([
    ['', '', 0],
    ['abc', '', 3],
    ['kitten', 'sitting', 3],
    ['flie', 'file', 1],
    ['after', 'afer', 1],
    ['sha256', 'sha265', 1],
  ])('%s -> %s is %i', (a, b, distance) => {
    expect(editDistance(a, b)).toBe(distance);
    expect(editDistance(b, a)).toBe(distance);
  });
});

describe('closestMatch', () => {
  it('suggests a near id and nothing for a far or very short one', () => {
    expect(closestMatch('hsh', ['hash', 'zip'])).toBe('hash');
    expect(closestMatch('upload-to-s3', ['hash', 'zip'])).toBeUndefined();
    expect(closestMatch('b', ['a', 'c'])).toBeUndefined();
    expect(closestMatch('B', ['a', 'b'])).toBe('b');
  });
});
