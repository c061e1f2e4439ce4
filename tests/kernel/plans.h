/* tests/kernel/plans.h — plan documents shared by the kernel tests. */
#ifndef EMBER_TESTS_KERNEL_PLANS_H
#define EMBER_TESTS_KERNEL_PLANS_H

/* parallelize(4) -> map -> reduce_by_key(3) -> map_values
 * -> group_by_key(2): three stages, 4 + 3 + 2 tasks. */
#define PLAN_CHAIN                                                          \
    "{\"ember_plan\":1,\"datasets\":["                                      \
    "{\"id\":0,\"op\":\"parallelize\",\"partitions\":4},"                   \
    "{\"id\":1,\"op\":\"map\",\"parents\":[0],\"fns\":[\"std.identity\"]}," \
    "{\"id\":2,\"op\":\"reduce_by_key\",\"parents\":[1],"                   \
    "\"fns\":[\"std.sum\"],\"partitioner\":{\"kind\":\"hash\","             \
    "\"partitions\":3}},"                                                   \
    "{\"id\":3,\"op\":\"map_values\",\"parents\":[2],"                      \
    "\"fns\":[\"std.identity\"]},"                                          \
    "{\"id\":4,\"op\":\"group_by_key\",\"parents\":[3],"                    \
    "\"partitioner\":{\"kind\":\"hash\",\"partitions\":2}}]}"

/* A diamond and a cogroup with one narrow and one shuffle parent:
 *   0 parallelize(2) -> 1 map, 2 filter -> 3 union(4) -> 4 reduce(2)
 *   0 -> 5 group_by_key(3);  6 cogroup(4 narrow, 5 shuffle) hash(2)
 * Stages: map(3) 4 tasks, map(0) 2 tasks, map(5) 3 tasks, result 2. */
#define PLAN_DIAMOND                                                        \
    "{\"ember_plan\":1,\"datasets\":["                                      \
    "{\"id\":0,\"op\":\"parallelize\",\"partitions\":2},"                   \
    "{\"id\":1,\"op\":\"map\",\"parents\":[0],\"fns\":[\"std.identity\"]}," \
    "{\"id\":2,\"op\":\"filter\",\"parents\":[0],"                          \
    "\"fns\":[\"std.identity\"]},"                                          \
    "{\"id\":3,\"op\":\"union\",\"parents\":[1,2]},"                        \
    "{\"id\":4,\"op\":\"reduce_by_key\",\"parents\":[3],"                   \
    "\"fns\":[\"std.sum\"],\"partitioner\":{\"kind\":\"hash\","             \
    "\"partitions\":2}},"                                                   \
    "{\"id\":5,\"op\":\"group_by_key\",\"parents\":[0],"                    \
    "\"partitioner\":{\"kind\":\"hash\",\"partitions\":3}},"                \
    "{\"id\":6,\"op\":\"cogroup\",\"parents\":[4,5],"                       \
    "\"partitioner\":{\"kind\":\"hash\",\"partitions\":2}}]}"

/* parallelize(4) -> reduce_by_key(2): a map stage and a result stage.
 * DET is the map side's declared determinism. */
#define PLAN_TWO_STAGE_DET(det)                                             \
    "{\"ember_plan\":1,\"datasets\":["                                      \
    "{\"id\":0,\"op\":\"parallelize\",\"partitions\":4,"                    \
    "\"determinism\":\"" det "\"},"                                         \
    "{\"id\":1,\"op\":\"reduce_by_key\",\"parents\":[0],"                   \
    "\"fns\":[\"std.sum\"],\"partitioner\":{\"kind\":\"hash\","             \
    "\"partitions\":2}}]}"
#define PLAN_TWO_STAGE PLAN_TWO_STAGE_DET("deterministic")

/* One narrow stage of N partitions (N a string literal). */
#define PLAN_NARROW(n)                                                      \
    "{\"ember_plan\":1,\"datasets\":["                                      \
    "{\"id\":0,\"op\":\"parallelize\",\"partitions\":" n "},"               \
    "{\"id\":1,\"op\":\"map\",\"parents\":[0],\"fns\":[\"std.identity\"]}]}"

#endif /* EMBER_TESTS_KERNEL_PLANS_H */
