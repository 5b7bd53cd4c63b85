// The page's weight handling in Node: class names for any head size, labels
// files, and the demo-style checkpoint shapes (a non-ImageNet fc).
import { describe, expect, it } from 'vitest';
import { IMAGENET_CATEGORIES } from '@kiln/resnet';
import { labelsFor, parseLabels } from '../web/src/weights.js';

describe('page labels', () => {
  it('uses ImageNet names for 1000 classes and numbered ones otherwise', () => {
    expect(labelsFor(1000)).toEqual([...IMAGENET_CATEGORIES]);
    expect(labelsFor(3)).toEqual(['class 0', 'class 1', 'class 2']);
  });

  it('takes a safetensors labels entry only when it is a JSON array of the right length', () => {
    expect(labelsFor(2, { labels: '["cat","dog"]' })).toEqual(['cat', 'dog']);
    expect(labelsFor(2, { labels: '["cat"]' })).toEqual(['class 0', 'class 1']);
    expect(labelsFor(2, { labels: 'cat,dog' })).toEqual(['class 0', 'class 1']);
  });

  it('reads labels files as JSON arrays or one name per line', () => {
    expect(parseLabels('["a", "b"]', 'l.json')).toEqual(['a', 'b']);
    expect(parseLabels('t-shirt\r\ntrouser\n\n  pullover \n', 'l.txt')).toEqual(['t-shirt', 'trouser', 'pullover']);
    expect(() => parseLabels('[1, 2]', 'l.json')).toThrow(/l\.json is not a JSON array of strings/);
    expect(() => parseLabels('[oops', 'l.json')).toThrow(/l\.json is not valid JSON/);
    expect(() => parseLabels('\n\n', 'l.txt')).toThrow(/l\.txt has no labels/);
  });
});
