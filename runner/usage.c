/* runner/usage.c - the build's resource use (the sandbox's counters: per
 * phase from its commands' process trees, in all from its cgroup where it
 * has one), its cost from the price table, and right-sizing advice: a
 * compute type whose memory the build nearly filled, or a cheaper one it
 * would fit. */
#include "runner/runner_internal.h"
#include "sandbox/sandbox.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

/* Over this share of a type's memory, the build does not fit it: the
 * service's builds share that memory with the agent and the image's daemons. */
#define FIT_MEMORY 0.85
/* Averaging more than this share of a type's vCPUs, it is CPU-bound there. */
#define FIT_CPU 0.75

void runner_usage_command(runner_build *b, runner_phase_type p)
{
	if (!b->sandbox)
		return;
	sandbox_usage u;
	sandbox_usage_last(b->sandbox, &u);
	runner_usage *ph = &b->usage.phase[p];
	ph->measured = true;
	ph->cpu_us += u.cpu_us;
	ph->read_bytes += u.read_bytes;
	ph->write_bytes += u.write_bytes;
	if (u.mem_peak > ph->mem_peak)
		ph->mem_peak = u.mem_peak;
}

/* Where the sandbox's own peak comes from, by its source. */
static const char *total_peak_source(const char *source)
{
	if (!strncmp(source, "cgroup v2", 9))
		return "cgroup v2 memory.peak";
	if (!strncmp(source, "cgroup v1", 9))
		return "cgroup v1 memory.max_usage_in_bytes";
	return "process tree ru_maxrss";
}

/* The build's figures are the sandbox's (sandbox_usage_total: its cgroup's
 * counters, daemons included, where it has one; else every command's
 * process tree added up), a phase's are always its commands' process trees
 * (wait4's rusage, runner_usage_command).  The two count different things:
 * memory.peak / memory.max_usage_in_bytes is the memory charged to the
 * cgroup, and a page already in the page cache, charged to whoever read it
 * first (a library, a file the host had read), is not; ru_maxrss is the
 * largest process's resident set, those shared pages included.  io.stat's
 * wbytes is what the cgroup's writeback sent to a disk by now (flushed);
 * ru_oublock is what the commands dirtied in the page cache of a disk's
 * file system, counted when written, flushed or not.  So the build's figure
 * is never let below its phases': its peak is at least the largest phase
 * peak (peak_source says which count it is), its CPU and bytes at least
 * their sum. */
static void fold_phases(runner_usage_part *up)
{
	runner_usage *t = &up->total;
	int64_t cpu = 0, rd = 0, wr = 0;
	up->peak_source = total_peak_source(up->source);
	for (int p = 0; p < RUNNER_PHASE_COUNT; p++) {
		const runner_usage *ph = &up->phase[p];
		if (!ph->measured)
			continue;
		cpu += ph->cpu_us;
		rd += ph->read_bytes;
		wr += ph->write_bytes;
		if (ph->mem_peak > t->mem_peak) {
			t->mem_peak = ph->mem_peak;
			up->peak_source = "process tree ru_maxrss";
		}
	}
	if (cpu > t->cpu_us)
		t->cpu_us = cpu;
	if (rd > t->read_bytes)
		t->read_bytes = rd;
	if (wr > t->write_bytes)
		t->write_bytes = wr;
}

void runner_usage_sample(runner_build *b)
{
	if (!b->sandbox)
		return;
	sandbox_usage u;
	sandbox_usage_total(b->sandbox, &u);
	if (!u.source)
		return; /* nothing ran yet */
	b->usage.total = (runner_usage){true, u.cpu_us, u.mem_peak, u.read_bytes, u.write_bytes};
	b->usage.source = u.source;
	fold_phases(&b->usage);
}

static json_t *usage_obj(const runner_usage *u)
{
	json_t *o = json_object();
	json_object_set_new(o, "cpuSeconds", json_real((double)(u->cpu_us / 1000) / 1e3));
	json_object_set_new(o, "memoryPeakBytes", json_integer(u->mem_peak));
	json_object_set_new(o, "readBytes", json_integer(u->read_bytes));
	json_object_set_new(o, "writeBytes", json_integer(u->write_bytes));
	return o;
}

/* The time the build's commands ran: INSTALL to POST_BUILD. */
static int64_t command_time_us(const runner_build *b)
{
	int64_t t = 0;
	for (int p = RUNNER_PHASE_INSTALL; p <= RUNNER_PHASE_POST_BUILD; p++)
		if (b->phases[p].started && b->phases[p].ended)
			t += b->phases[p].end_us - b->phases[p].start_us;
	return t;
}

static bool same_family(const runner_compute *a, const runner_compute *c)
{
	return (a->vcpus == 0) == (c->vcpus == 0);
}

static bool fits(const runner_compute *c, int64_t peak, double vcpus_used)
{
	return (double)peak <= FIT_MEMORY * (double)((int64_t)c->memory_gb << 30) &&
	       (!c->vcpus || vcpus_used <= FIT_CPU * c->vcpus);
}

static double gb(int64_t bytes) { return (double)bytes / (double)(1LL << 30); }

/* The advice for a build of type ct that peaked at peak bytes and averaged
 * vcpus_used CPUs: NULL (nothing to say) or {"computeType", "reason"}. */
static json_t *advise(const json_t *prices, const runner_compute *ct, int64_t peak, double vcpus_used)
{
	char why[256];
	const runner_compute *best = NULL, *c;
	if ((double)peak > FIT_MEMORY * (double)((int64_t)ct->memory_gb << 30)) {
		for (size_t i = 0; (c = runner_compute_at(i)); i++)
			if (same_family(c, ct) && c->memory_gb > ct->memory_gb && fits(c, peak, 0)) {
				best = c;
				break;
			}
		snprintf(why, sizeof(why), "peaked at %.1f GB of %s's %d GB: %s", gb(peak), ct->name, ct->memory_gb,
			 best ? best->name : "no larger compute type of its family has room");
	} else if (ct->vcpus && vcpus_used > FIT_CPU * ct->vcpus) {
		for (size_t i = 0; (c = runner_compute_at(i)); i++)
			if (same_family(c, ct) && c->vcpus > ct->vcpus) {
				best = c;
				break;
			}
		if (!best)
			return NULL;
		snprintf(why, sizeof(why), "used %.1f of %d vCPUs (CPU-bound): %s would be faster", vcpus_used,
			 ct->vcpus, best->name);
	} else {
		/* the smallest of its family it fits, if smaller than it */
		for (size_t i = 0; (c = runner_compute_at(i)); i++)
			if (same_family(c, ct) && c->memory_gb < ct->memory_gb && fits(c, peak, vcpus_used)) {
				best = c;
				break;
			}
		if (!best)
			return NULL;
		double a = 0, z = 0;
		char cheaper[96];
		if (runner_prices_per_minute(prices, ct->name, &a) && runner_prices_per_minute(prices, best->name, &z) &&
		    z > 0)
			snprintf(cheaper, sizeof(cheaper), "%s would cost %.3gx less", best->name, a / z);
		else
			snprintf(cheaper, sizeof(cheaper), "%s would do (the price table has no price for both)",
				 best->name);
		if (ct->vcpus)
			snprintf(why, sizeof(why), "used %.1f of %d vCPUs, peaked at %.1f GB of %d GB: %s", vcpus_used,
				 ct->vcpus, gb(peak), ct->memory_gb, cheaper);
		else
			snprintf(why, sizeof(why), "peaked at %.1f GB of %d GB: %s", gb(peak), ct->memory_gb, cheaper);
	}
	json_t *r = json_object();
	json_object_set_new(r, "computeType", best ? json_string(best->name) : json_null());
	json_object_set_new(r, "reason", json_string(why));
	return r;
}

/* "cost" (with the table's source and date) and "recommendation". */
static void add_cost(const runner_build *b, json_t *o)
{
	json_t *prices = NULL;
	cbl_error *e = NULL;
	json_t *cost = json_object();
	if (runner_prices_load(&prices, &e) < 0) {
		json_object_set_new(cost, "error", json_string(e->msg));
		cbl_error_free(e);
		json_object_set_new(o, "cost", cost);
		return;
	}
	int64_t billed = b->end_us - b->start_us;
	double amount = 0;
	json_object_set_new(cost, "computeType", json_string(b->cfg.compute_type));
	if (runner_prices_cost(prices, b->cfg.compute_type, billed, &amount)) {
		json_object_set_new(cost, "amount", json_real(amount));
		json_object_set_new(cost, "currency", json_incref(json_object_get(prices, "currency")));
	} else {
		json_object_set_new(cost, "amount", json_null());
		json_object_set_new(cost, "reason", json_string("the price table has no price for this compute type"));
	}
	json_object_set_new(cost, "priceSource", json_incref(json_object_get(prices, "source")));
	json_object_set_new(cost, "priceDate", json_incref(json_object_get(prices, "date")));
	json_object_set_new(o, "cost", cost);
	const runner_compute *ct = runner_compute_find(b->cfg.compute_type);
	int64_t t = command_time_us(b);
	if (ct && b->usage.total.measured) {
		double vcpus = t > 0 ? (double)b->usage.total.cpu_us / (double)t : 0;
		json_t *adv = advise(prices, ct, b->usage.total.mem_peak, vcpus);
		if (adv)
			json_object_set_new(o, "recommendation", adv);
	}
	json_decref(prices);
}

json_t *runner_usage_phase_json(const runner_build *b, runner_phase_type p)
{
	return b->usage.phase[p].measured ? usage_obj(&b->usage.phase[p]) : NULL;
}

json_t *runner_usage_json(const runner_build *b)
{
	json_t *o = json_object();
	if (b->usage.total.measured) {
		json_t *u = usage_obj(&b->usage.total);
		int64_t t = command_time_us(b);
		json_object_set_new(u, "averageVcpus", json_real(t > 0 ? (double)b->usage.total.cpu_us / (double)t : 0));
		json_object_set_new(u, "source", json_string(b->usage.source));
		json_object_set_new(u, "memoryPeakSource", json_string(b->usage.peak_source));
		json_object_set_new(o, "resourceUsage", u);
	}
	if (b->end_us)
		add_cost(b, o);
	return o;
}
