export * from './actions.js';
export * from './assign.js';
export * from './codec.js';
export * from './ledger.js';
export * from './rejections.js';
export * from './schema.js';
export { sampleAdvert } from './testing/fixtures.js';
export * from './topics.js';
export * from './yaml.js';
