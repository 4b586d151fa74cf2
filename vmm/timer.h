/* timer: one-shot deadlines on CLOCK_MONOTONIC for device models (PIT, RTC, UART).
 *
 * A timer list belongs to a machine. Callbacks run with the machine's device
 * lock held, from whichever thread services the list: the emu vCPU thread
 * between instruction blocks, or the worker's I/O loop.
 */
#ifndef VMD_TIMER_H
#define VMD_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define TIMER_NEVER UINT64_MAX

struct vm_timer {
    uint64_t deadline_ns; /* TIMER_NEVER when disarmed */
    void (*cb)(void *opaque, uint64_t now_ns);
    void *opaque;
    struct vm_timer *next; /* in the list's armed chain, sorted by deadline */
    bool armed;
};

struct timer_list {
    struct vm_timer *head;
};

uint64_t clock_now_ns(void);

void timer_init(struct vm_timer *t, void (*cb)(void *opaque, uint64_t now_ns), void *opaque);
/* (Re)arm `t` to fire once at `deadline_ns`. */
void timer_mod(struct timer_list *list, struct vm_timer *t, uint64_t deadline_ns);
void timer_del(struct timer_list *list, struct vm_timer *t);
/* Fire every timer whose deadline is <= now. Returns how many fired. */
int timers_run(struct timer_list *list, uint64_t now_ns);
/* Earliest armed deadline, or TIMER_NEVER. */
uint64_t timers_next_deadline(const struct timer_list *list);

#endif
