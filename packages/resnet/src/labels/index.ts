export { IMAGENET_CATEGORIES } from './imagenet.js';
