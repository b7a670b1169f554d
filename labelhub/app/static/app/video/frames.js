// Frames of a video: fetched once each (the API marks them immutable), prefetched around the shown
// frame so stepping and playing never wait on the network.
export class FrameCache {
  constructor(videoId, { ahead = 12, behind = 4, limit = 120 } = {}) {
    this.videoId = videoId;
    this.ahead = ahead;
    this.behind = behind;
    this.limit = limit;
    this.images = new Map(); // frame -> Promise<HTMLImageElement>
  }

  get(frame) {
    let p = this.images.get(frame);
    if (!p) {
      p = new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = () => reject(new Error(`frame ${frame} did not load`));
        img.src = `/api/v1/videos/${this.videoId}/frames/${frame}/`;
      });
      this.images.set(frame, p);
      this.trim(frame);
    }
    return p;
  }

  /** Start loading the frames around `frame` inside [start, stop). */
  prefetch(frame, start, stop) {
    for (let f = Math.max(start, frame - this.behind); f < Math.min(stop, frame + this.ahead + 1); f++) this.get(f).catch(() => {});
  }

  trim(center) {
    if (this.images.size <= this.limit) return;
    const far = [...this.images.keys()].sort((a, b) => Math.abs(b - center) - Math.abs(a - center));
    for (const f of far.slice(0, this.images.size - this.limit)) this.images.delete(f);
  }

  loaded(frame) {
    return this.images.has(frame);
  }
}
