// Browser stand-in for Node's `events` module: the small EventEmitter subset that
// bundled dependencies use.
export class EventEmitter {
  constructor() {
    this.listeners = new Map();
  }
  on(name, fn) {
    (this.listeners.get(name) || this.listeners.set(name, []).get(name)).push(fn);
    return this;
  }
  off(name, fn) {
    this.listeners.set(
      name,
      (this.listeners.get(name) || []).filter((f) => f !== fn),
    );
    return this;
  }
  once(name, fn) {
    const wrap = (...a) => {
      this.off(name, wrap);
      fn(...a);
    };
    return this.on(name, wrap);
  }
  emit(name, ...args) {
    for (const fn of this.listeners.get(name) || []) fn(...args);
    return true;
  }
  removeListener(name, fn) {
    return this.off(name, fn);
  }
  addListener(name, fn) {
    return this.on(name, fn);
  }
}
export default EventEmitter;
