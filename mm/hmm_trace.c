// SPDX-License-Identifier: GPL-2.0
/*
 * The home of HMM's tracepoints (include/trace/events/hmm.h). Their users
 * are spread over options that need not all be set: hmm_range_fault()
 * (HMM_MIRROR), migration (DEVICE_MIGRATION) and the CPU fault and
 * device-exclusive paths (DEVICE_PRIVATE), so they are defined here, built
 * whenever HMM_MIRROR or ZONE_DEVICE is, rather than in any one of them.
 *
 * Each is exported, so that a module can attach a probe: a driver keeping
 * its own statistics, or the KUnit tests, which check that the events of
 * a migration add up to its /proc/vmstat events.
 */
#include <linux/hmm.h>

#define CREATE_TRACE_POINTS
#include <trace/events/hmm.h>

/*
 * Counts hmm_migrate_page and hmm_migrate_skip while each has a probe: the
 * tracepoint core calls the first function when an event gets its first
 * probe and the second when it loses its last, under tracepoints_mutex.
 */
DEFINE_STATIC_KEY_FALSE(hmm_trace_entries_key);

int hmm_trace_entries_reg(void)
{
	static_branch_inc(&hmm_trace_entries_key);
	return 0;
}

void hmm_trace_entries_unreg(void)
{
	static_branch_dec(&hmm_trace_entries_key);
}

EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_range_fault);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_migrate_vma_setup);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_migrate_device_range);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_migrate_device_pfns);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_migrate_vma_pages);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_migrate_vma_finalize);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_migrate_device_pages);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_migrate_device_finalize);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_migrate_page);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_migrate_skip);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_migrate_split);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_device_private_fault);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_device_exclusive_grant);
EXPORT_TRACEPOINT_SYMBOL_GPL(hmm_device_exclusive_revoke);
