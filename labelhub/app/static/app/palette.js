// The classes' colours, in a module of their own so that screens without a canvas (the workspace, the
// manager's charts) do not load view.js and Konva with it.

// Okabe & Ito (2002), then Paul Tol's muted set: a class keeps its colour across tasks.
export const PALETTE = [
  "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000",
  "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499",
];
