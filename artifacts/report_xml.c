/* artifacts/report_xml.c - streaming libxml2 for untrusted report files.
 *
 * Report files come out of the build, i.e. from whatever the buildspec ran,
 * so they are untrusted and may be huge (a million JUnit cases, a 20 MB
 * <system-out>):
 * - SAX2 push parser (xmlCreatePushParserCtxt + xmlParseChunk) fed in
 *   chunks: no tree is built, memory does not grow with the document.  Not
 *   xmlTextReader: the reader builds each node through the SAX2 tree
 *   handlers, which refuse a text node above 10 MB without XML_PARSE_HUGE
 *   ("xmlSAX2Characters: huge text node"), so one big system-out would fail
 *   the whole file.  Our own text handler just skips text nobody asked for.
 * - XML_PARSE_NONET: nothing is ever fetched over the network;
 * - no XML_PARSE_DTDLOAD / DTDATTR / DTDVALID: external DTDs (JaCoCo's
 *   `<!DOCTYPE report PUBLIC "-//JACOCO//DTD Report 1.1//EN" "report.dtd">`)
 *   are not read, not even from the local filesystem;
 * - no XML_PARSE_NOENT: entity references are not substituted and external
 *   parsed entities are not loaded.  libxml2 still parses an internal
 *   entity's replacement text once, in a nested parser context that calls
 *   the same SAX handlers: those calls (recognised by their context) go to
 *   libxml2's own tree builders, so the entity's content is built once into
 *   the entity (as the DOM parser does, bounded by libxml2's amplification
 *   checks) and never reaches the format parsers.  In attribute values the
 *   references are dropped (artifacts_report_xml_attr).  No XXE, no billion
 *   laughs.
 * - no XML_PARSE_HUGE: libxml2's limits on names, attribute values, depth
 *   and lookahead stay.  Text and CDATA are delivered in pieces and are not
 *   subject to them, with one wrinkle: libxml2 2.9's push parser hands out
 *   only 300 bytes of an unfinished CDATA section per xmlParseChunk call, so
 *   while it is inside one we feed small slices and let it drain (otherwise
 *   the unparsed input passes its 10 MB lookahead limit);
 * - XML_PARSE_NOERROR | NOWARNING and no error callbacks: libxml2 must not
 *   print; the context's last error becomes our message.  Some errors are
 *   raised without a parser context (a byte sequence the declared encoding
 *   cannot convert) and would go to libxml2's generic handler, i.e. stderr:
 *   for the duration of a parse the calling thread's generic and structured
 *   handlers (thread-local in libxml2) are ours, silent, then restored; the
 *   structured one keeps the first error, the cause, for the message.  Such
 *   an error halts the push parser without marking the document as not
 *   well-formed, so a parse only succeeds when the terminating chunk was
 *   parsed and the root element closed.
 * xmlInitParser runs once (pthread_once); xmlCleanupParser is left to the
 * program.
 */
#include "artifacts/report_internal.h"

#include <errno.h>
#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlversion.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/array.h"
#include "util/buf.h"

#include "util/banned.h"

#define READ_CHUNK (256u << 10) /* bytes read from a descriptor at a time */
#define FEED_CHUNK (64u << 10)	/* bytes handed to xmlParseChunk at a time */
#define CDATA_SLICE 512u	/* ... while inside an unfinished CDATA section */
#define CAPTURE_DEPTH 64	/* element levels below a captured element */

struct xml_attr {
	const xmlChar *name, *value, *end;
	char *decoded; /* into the arena, NULL until asked for */
};

struct artifacts_report_xml {
	xmlParserCtxt *ctxt;
	const artifacts_report_xml_ops *ops;
	void *user;
	const char *display;
	size_t chunk; /* in->chunk */
	cbl_error **err;
	int rc;	   /* < 0 once a callback failed */
	int depth; /* open elements */
	/* the starting element's attributes (inside ops->start only) */
	struct xml_attr *attrs;
	size_t nattrs, attrs_cap;
	char *arena;
	size_t arena_cap, arena_used;
	/* text capture */
	cbl_buf *cap;
	int cap_depth; /* depth of the captured element */
	bool cap_full;
	bool in_start;
	bool root_closed;
	/* the first error libxml2 raised during the parse; fatal ones first */
	cbl_buf first_error;
	int first_error_line;
	bool first_error_fatal;
};

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
	xmlInitParser();
}

/* The parse a callback belongs to; NULL for libxml2's nested entity
 * contexts (see the header comment). */
static artifacts_report_xml *main_parse(void *ctx)
{
	xmlParserCtxt *c = ctx;
	artifacts_report_xml *x = c ? c->_private : NULL;
	return x && x->ctxt == c ? x : NULL;
}

static void stop(artifacts_report_xml *x, int rc)
{
	if (x->rc == 0)
		x->rc = rc;
	xmlStopParser(x->ctxt);
}

/* ------------------------------------------------------------ attributes */

static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	size_t n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

static void put_utf8(char **w, unsigned long cp)
{
	unsigned char *p = (unsigned char *)*w;
	if (cp < 0x80) {
		*p++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*p++ = (unsigned char)(0xC0 | (cp >> 6));
		*p++ = (unsigned char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		*p++ = (unsigned char)(0xE0 | (cp >> 12));
		*p++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		*p++ = (unsigned char)(0x80 | (cp & 0x3F));
	} else {
		*p++ = (unsigned char)(0xF0 | (cp >> 18));
		*p++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		*p++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		*p++ = (unsigned char)(0x80 | (cp & 0x3F));
	}
	*w = (char *)p;
}

/* Without XML_PARSE_NOENT libxml2 hands attribute values to SAX2 with '&'
 * escaped as "&#38;" and references to declared entities left as "&name;"
 * (its tree builder turns them into entity reference nodes).  Decodes the
 * character references and the predefined entities, drops the rest.  The
 * result is never longer than the input. */
static void decode_value(char *w, const char *s, const char *end)
{
	static const struct {
		const char *name;
		char c;
	} predef[] = {{"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"apos", '\''}, {"quot", '"'}};
	while (s < end) {
		if (*s != '&') {
			*w++ = *s++;
			continue;
		}
		const char *semi = memchr(s, ';', (size_t)(end - s));
		if (!semi) { /* cannot happen after libxml2; keep the byte */
			*w++ = *s++;
			continue;
		}
		const char *ref = s + 1;
		size_t rn = (size_t)(semi - ref);
		s = semi + 1;
		if (rn >= 2 && ref[0] == '#') {
			unsigned long cp = 0;
			bool hex = ref[1] == 'x', okc = rn > (hex ? 2u : 1u);
			for (size_t i = hex ? 2 : 1; i < rn && okc; i++) {
				int d = ref[i] >= '0' && ref[i] <= '9'	 ? ref[i] - '0'
					: hex && ref[i] >= 'a' && ref[i] <= 'f' ? ref[i] - 'a' + 10
					: hex && ref[i] >= 'A' && ref[i] <= 'F' ? ref[i] - 'A' + 10
										: -1;
				if (d < 0 || cp > 0x10FFFF)
					okc = false;
				else
					cp = cp * (hex ? 16 : 10) + (unsigned long)d;
			}
			/* "&#N;" is never shorter than N's UTF-8 (&#128; is 6
			 * bytes for 2, &#65536; 8 for 4) */
			if (okc && cp > 0 && cp <= 0x10FFFF)
				put_utf8(&w, cp);
			continue;
		}
		for (size_t i = 0; i < ARRAY_SIZE(predef); i++)
			if (strlen(predef[i].name) == rn && !memcmp(ref, predef[i].name, rn)) {
				*w++ = predef[i].c;
				break;
			}
		/* any other entity reference: dropped, never expanded */
	}
	*w = '\0';
}

const char *artifacts_report_xml_attr(artifacts_report_xml *x, const char *name)
{
	if (!x->in_start)
		return NULL;
	for (size_t i = 0; i < x->nattrs; i++) {
		struct xml_attr *a = &x->attrs[i];
		if (strcmp((const char *)a->name, name) != 0)
			continue;
		if (!a->decoded) {
			size_t n = (size_t)(a->end - a->value);
			a->decoded = x->arena + x->arena_used; /* sized in sax_start */
			x->arena_used += n + 1;
			if (memchr(a->value, '&', n)) {
				decode_value(a->decoded, (const char *)a->value, (const char *)a->end);
			} else {
				memcpy(a->decoded, a->value, n);
				a->decoded[n] = '\0';
			}
		}
		return a->decoded;
	}
	return NULL;
}

/* ------------------------------------------------------------ SAX handlers */

static void sax_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
		      int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
		      const xmlChar **attributes)
{
	artifacts_report_xml *x = main_parse(ctx);
	if (!x) {
		xmlSAX2StartElementNs(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes,
				      nb_defaulted, attributes);
		return;
	}
	if (x->rc < 0)
		return;
	int depth = x->depth++;
	const char *name = (const char *)localname;
	if (depth == 0) {
		const char *const *roots = x->ops->roots;
		bool found = false;
		for (size_t i = 0; roots && roots[i] && !found; i++)
			found = !strcmp(roots[i], name);
		if (!found) {
			cbl_buf want = CBL_BUF_INIT;
			for (size_t i = 0; roots && roots[i]; i++)
				cbl_buf_printf(&want, "%s<%s>", i ? " or " : "", roots[i]);
			int rc = artifacts_report_xml_fail(x, artifacts_report_xml_line(x),
							   "expected root element %s, found <%s>",
							   cbl_buf_cstr(&want), name);
			cbl_buf_release(&want);
			stop(x, rc);
			return;
		}
	}
	size_t n = nb_attributes > 0 ? (size_t)nb_attributes : 0, need = 0;
	CBL_GROW(x->attrs, n, x->attrs_cap);
	for (size_t i = 0; i < n; i++) {
		const xmlChar **a = &attributes[i * 5];
		x->attrs[i] = (struct xml_attr){.name = a[0], .value = a[3], .end = a[4], .decoded = NULL};
		need += (size_t)(a[4] - a[3]) + 1;
	}
	if (need > x->arena_cap) {
		free(x->arena);
		x->arena_cap = need < 4096 ? 4096 : need;
		x->arena = cbl_xmalloc(x->arena_cap);
	}
	x->nattrs = n;
	x->arena_used = 0;
	x->in_start = true;
	int rc = x->ops->start(x, x->user, name, depth);
	x->in_start = false;
	x->nattrs = 0;
	if (rc < 0)
		stop(x, rc);
}

static void sax_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
	artifacts_report_xml *x = main_parse(ctx);
	if (!x) {
		xmlSAX2EndElementNs(ctx, localname, prefix, uri);
		return;
	}
	if (x->rc < 0 || x->depth <= 0)
		return;
	int depth = --x->depth;
	if (depth == 0)
		x->root_closed = true;
	if (x->cap && depth <= x->cap_depth)
		x->cap = NULL;
	if (x->ops->end)
		x->ops->end(x, x->user, (const char *)localname, depth);
}

static void text(artifacts_report_xml *x, const xmlChar *s, int len)
{
	if (!x->cap || x->cap_full || len <= 0 || x->depth - 1 - x->cap_depth > CAPTURE_DEPTH)
		return;
	size_t room = ARTIFACTS_REPORT_MAX_TEXT - x->cap->len, n = (size_t)len;
	if (n > room) {
		n = utf8_cut((const char *)s, n, room);
		x->cap_full = true;
	}
	cbl_buf_append(x->cap, (const char *)s, n);
}

static void sax_characters(void *ctx, const xmlChar *s, int len)
{
	artifacts_report_xml *x = main_parse(ctx);
	if (!x)
		xmlSAX2Characters(ctx, s, len);
	else
		text(x, s, len);
}

static void sax_cdata(void *ctx, const xmlChar *s, int len)
{
	artifacts_report_xml *x = main_parse(ctx);
	if (!x)
		xmlSAX2CDataBlock(ctx, s, len);
	else
		text(x, s, len);
}

/* References, comments and PIs of the document itself are skipped; inside
 * an entity's nested context libxml2's builders keep the entity intact. */
static void sax_reference(void *ctx, const xmlChar *name)
{
	if (!main_parse(ctx))
		xmlSAX2Reference(ctx, name);
}

static void sax_comment(void *ctx, const xmlChar *value)
{
	if (!main_parse(ctx))
		xmlSAX2Comment(ctx, value);
}

static void sax_pi(void *ctx, const xmlChar *target, const xmlChar *data)
{
	if (!main_parse(ctx))
		xmlSAX2ProcessingInstruction(ctx, target, data);
}

/* ------------------------------------------------------------ driver */

int artifacts_report_xml_line(const artifacts_report_xml *x)
{
	int l = x->ctxt ? xmlSAX2GetLineNumber(x->ctxt) : 0;
	return l > 0 ? l : 0;
}

bool artifacts_report_xml_capture(artifacts_report_xml *x, cbl_buf *into)
{
	if (!x->in_start || x->cap)
		return false;
	x->cap = into;
	x->cap_depth = x->depth - 1;
	x->cap_full = into->len >= ARTIFACTS_REPORT_MAX_TEXT;
	return true;
}

int artifacts_report_xml_fail(artifacts_report_xml *x, int line, const char *fmt, ...)
{
	cbl_buf b = CBL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	int rc = artifacts_report_fail(x->err, x->display, line, "%s", cbl_buf_cstr(&b));
	cbl_buf_release(&b);
	return rc;
}

static bool halted(const artifacts_report_xml *x)
{
	return x->rc < 0 || !x->ctxt->wellFormed || x->ctxt->instate == XML_PARSER_EOF;
}

/* Hands data to the parser in slices (see the header comment on CDATA). */
static void feed(artifacts_report_xml *x, const char *p, size_t n)
{
	xmlParserCtxt *c = x->ctxt;
	while (n && !halted(x)) {
		size_t k = c->instate == XML_PARSER_CDATA_SECTION ? CDATA_SLICE : FEED_CHUNK;
		if (x->chunk && k > x->chunk)
			k = x->chunk;
		if (k > n)
			k = n;
		xmlParseChunk(c, p, (int)k, 0);
		p += k;
		n -= k;
		while (!halted(x) && c->instate == XML_PARSER_CDATA_SECTION && c->input &&
		       c->input->end - c->input->cur > (ptrdiff_t)CDATA_SLICE) {
			long before = xmlByteConsumed(c);
			xmlParseChunk(c, NULL, 0, 0);
			if (xmlByteConsumed(c) == before)
				break;
		}
	}
}

/* libxml2's first fatal error (else its first error), which is the cause:
 * after it libxml2 may add consequences, e.g. "encoder error" after a
 * conversion failure. */
static int xml_error(artifacts_report_xml *x)
{
	const char *m = x->first_error.len ? cbl_buf_cstr(&x->first_error)
			: x->depth		   ? "premature end of data"
						   : "no root element";
	size_t n = strlen(m);
	while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
		n--;
	int line = x->first_error_line > 0 ? x->first_error_line : artifacts_report_xml_line(x);
	return artifacts_report_fail(x->err, x->display, line, "invalid XML: %.*s", (int)n, m);
}

static void silent_generic(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

/* Every error of the parse comes here (the thread's structured handler, as
 * the SAX handler has no serror): kept, never printed. */
#if LIBXML_VERSION >= 21200
static void record_error(void *ctx, const xmlError *e)
#else
static void record_error(void *ctx, xmlErrorPtr e)
#endif
{
	artifacts_report_xml *x = ctx;
	if (!e || e->level < XML_ERR_ERROR || !e->message || !*e->message)
		return;
	bool fatal = e->level == XML_ERR_FATAL;
	if (x->first_error.len && (x->first_error_fatal || !fatal))
		return;
	/* e.g. an undeclared namespace prefix is an error that does not stop
	 * the parse; a fatal error after it is the one to report */
	cbl_buf_reset(&x->first_error);
	cbl_buf_puts(&x->first_error, e->message);
	x->first_error_line = e->line;
	x->first_error_fatal = fatal;
}

int artifacts_report_xml_run(const artifacts_report_input *in, const artifacts_report_xml_ops *ops, void *user,
			     cbl_error **err)
{
	artifacts_report_xml x = {.ops = ops, .user = user, .display = in->display ? in->display : "(report)",
				  .chunk = in->chunk, .err = err};
	xmlSAXHandler sax;
	char *buf = NULL;
	int rc = 0;

	pthread_once(&xml_once, xml_init);
	/* this thread's libxml2 error handlers, restored at out */
	xmlGenericErrorFunc old_generic = xmlGenericError;
	void *old_generic_ctx = xmlGenericErrorContext;
	xmlStructuredErrorFunc old_structured = xmlStructuredError;
	void *old_structured_ctx = xmlStructuredErrorContext;
	xmlSetGenericErrorFunc(NULL, silent_generic);
	xmlSetStructuredErrorFunc(&x, record_error);
	memset(&sax, 0, sizeof(sax));
	xmlSAXVersion(&sax, 2); /* libxml2's SAX2 defaults for the DTD and entities */
	sax.startElementNs = sax_start;
	sax.endElementNs = sax_end;
	sax.characters = sax_characters;
	sax.ignorableWhitespace = sax_characters;
	sax.cdataBlock = sax_cdata;
	sax.reference = sax_reference;
	sax.comment = sax_comment;
	sax.processingInstruction = sax_pi;
	sax.warning = NULL;
	sax.error = NULL;
	sax.fatalError = NULL;
	sax.serror = NULL;

	x.ctxt = xmlCreatePushParserCtxt(&sax, NULL, NULL, 0, NULL);
	if (!x.ctxt) {
		rc = cbl_error_set(err, CBL_ENOMEM, "%s: cannot create an XML parser", x.display);
		goto out;
	}
	x.ctxt->_private = &x;
	xmlCtxtUseOptions(x.ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

	if (in->fd >= 0) {
		buf = cbl_xmalloc(READ_CHUNK);
		while (!halted(&x)) {
			ssize_t r = read(in->fd, buf, READ_CHUNK);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot read '%s'", x.display);
				goto out;
			}
			if (r == 0)
				break;
			feed(&x, buf, (size_t)r);
		}
	} else {
		feed(&x, in->data ? in->data : "", in->len);
	}
	bool finished = false;
	if (!halted(&x)) {
		xmlParseChunk(x.ctxt, NULL, 0, 1);
		finished = true;
	}
	if (x.rc < 0) {
		rc = x.rc;
		goto out;
	}
	if (!finished || !x.ctxt->wellFormed || !x.root_closed || x.depth != 0) {
		rc = xml_error(&x);
		goto out;
	}
	if (ops->finish)
		rc = ops->finish(&x, user);
out:
	if (x.ctxt) {
		if (x.ctxt->myDoc)
			xmlFreeDoc(x.ctxt->myDoc);
		x.ctxt->myDoc = NULL;
		xmlFreeParserCtxt(x.ctxt);
	}
	free(x.attrs);
	free(x.arena);
	free(buf);
	xmlSetGenericErrorFunc(old_generic_ctx, old_generic);
	xmlSetStructuredErrorFunc(old_structured_ctx, old_structured);
	cbl_buf_release(&x.first_error);
	return rc;
}
