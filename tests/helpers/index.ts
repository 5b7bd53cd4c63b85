// Test helpers shared by every package's tests, imported as `@kiln/test-helpers`
// (a vitest alias) or by relative path.
export * from './env.js';
export * from './reference.js';
export * from './compare.js';
