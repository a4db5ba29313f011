export { packageVersion } from '../broker/version.js';
