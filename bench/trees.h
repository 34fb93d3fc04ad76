/* Binary-tree builders shared by gcbench, binarytrees, mt and cold (static: each variant of
 * each workload gets its own copy, inlined where the compiler likes). */
#ifndef BENCH_TREES_H
#define BENCH_TREES_H

#include "shim.h"

/* Nodes of a complete binary tree of `depth` (depth 0 = one node). */
static inline uint64_t tree_size(int depth) {
  return (2ull << depth) - 1;
}

/* Top-down: gives `node` two fresh children and recurses (GCBench's Populate). */
static inline void tree_populate(shim *s, int depth, bnode *node) {
  if (depth <= 0)
    return;
  SHIM_SCOPE_BEGIN(s);
  SHIM_ROOT(s, node);
  shim_tick(s);
  bnode *child = shim_node(s, NULL, NULL);
  shim_write(s, node, (void **)&node->left, child);
  child = shim_node(s, NULL, NULL);
  shim_write(s, node, (void **)&node->right, child);
  /* Read the children after each call: the recursion may have moved them. */
  tree_populate(s, depth - 1, node->left);
  tree_populate(s, depth - 1, node->right);
  SHIM_SCOPE_END(s);
}

/* Bottom-up: children first, then their parent (GCBench's MakeTree). */
static inline bnode *tree_make(shim *s, int depth) {
  if (depth <= 0)
    return shim_node(s, NULL, NULL);
  bnode *left = tree_make(s, depth - 1), *result;
  SHIM_SCOPE_BEGIN(s);
  SHIM_ROOT(s, left);
  shim_tick(s);
  bnode *right = tree_make(s, depth - 1);
  result = shim_node(s, left, right);
  SHIM_SCOPE_END(s);
  return result;
}

/* Counts the nodes (no allocation, so no rooting needed). */
static inline uint64_t tree_count(const bnode *node) {
  uint64_t n = 0;
  while (node) {
    n += 1 + tree_count(node->left);
    node = node->right;
  }
  return n;
}

#endif
