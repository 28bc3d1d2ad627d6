/*
 * Many segments: more than the log's segment dictionary can name at once
 * and more than the default descriptor limit, as a filesystem full of
 * files produces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define NSEG 6000

static void test_more_segments_than_the_dictionary_holds(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(8), 50);
    rvm_region_t **r = calloc(NSEG, sizeof *r);
    assert_non_null(r);
    char name[4200];
    for (int i = 0; i < NSEG; i++) {
        snprintf(name, sizeof name, "%s/segment-%05d", c->dir, i);
        rvm_region_t *x = rvm_malloc_region();
        x->data_dev = strdup(name);
        x->length = rvm_page_size();
        assert_rvm_ok(rvm_map(x, NULL));
        r[i] = x;
        rvm_tid_t tid;
        rvm_init_tid(&tid);
        assert_rvm_ok(rvm_begin_transaction(&tid, restore));
        assert_rvm_ok(rvm_modify_bytes(&tid, x->vmaddr, &i, sizeof i));
        assert_rvm_ok(rvm_end_transaction(&tid, i % 100 ? no_flush : flush));
    }
    assert_rvm_ok(rvm_flush());
    for (int i = 0; i < NSEG; i++) {
        assert_rvm_ok(rvm_unmap(r[i]));
        rvm_free_region(r[i]);
    }
    assert_rvm_ok(rvm_terminate());
    /* Everything reached the files once recovered. */
    t_init(c, MIB(8), 50);
    for (int i = 0; i < NSEG; i += 37) {
        snprintf(name, sizeof name, "%s/segment-%05d", c->dir, i);
        int v = -1;
        t_read_file(name, 0, &v, sizeof v);
        assert_int_equal(v, i);
    }
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_more_segments_than_the_dictionary_holds,
                                        t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
