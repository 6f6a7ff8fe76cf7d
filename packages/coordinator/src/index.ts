export { ApiError, createApiClient, EXIT } from './client.js';
export { formatAgo, formatBytes, formatTable } from './format.js';
export { formatNodes, type PeerView } from './nodes.js';
