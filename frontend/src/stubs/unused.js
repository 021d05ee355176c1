// Stand-in for a library module that the portal never calls (see build.mjs).
const unavailable = () => {
  throw new Error('this module is not in the portal bundle (frontend/build.mjs)');
};
export default { newInstance: unavailable, extend: unavailable };
