import '@hermes-mesh/mesh/polyfill';
