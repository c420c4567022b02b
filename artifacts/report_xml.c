/* artifacts/report_xml.c - libxml2 for untrusted report files.
 *
 * Report files come out of the build, i.e. from whatever the buildspec ran,
 * so they are untrusted input:
 * - XML_PARSE_NONET: nothing is ever fetched over the network;
 * - no XML_PARSE_DTDLOAD / DTDATTR / DTDVALID: external DTDs (JaCoCo's
 *   `<!DOCTYPE report PUBLIC "-//JACOCO//DTD Report 1.1//EN" "report.dtd">`)
 *   are not read, not even from the local filesystem;
 * - no XML_PARSE_NOENT: entity references stay reference nodes, external
 *   parsed entities are not loaded (libxml2 only loads them for NOENT or
 *   DTDVALID), and the text helpers below skip reference nodes, so neither an
 *   XXE nor a "billion laughs" expansion reaches us;
 * - no XML_PARSE_HUGE: libxml2's default limits on text size and depth stay;
 * - XML_PARSE_NOERROR | NOWARNING: libxml2 must not print; the context's
 *   last error becomes our message.
 * xmlInitParser runs once (pthread_once); xmlCleanupParser is left to the
 * program.
 */
#include "artifacts/report_internal.h"

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"

#include "util/banned.h"

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
	xmlInitParser();
}

int artifacts_report_xml_parse(artifacts_report_xml *x, const char *data, size_t len, const char *display,
			       cbl_error **err)
{
	xmlParserCtxt *ctxt = NULL;
	xmlDoc *doc = NULL;
	int rc = 0;

	memset(x, 0, sizeof(*x));
	x->display = display;
	pthread_once(&xml_once, xml_init);
	if (len > INT_MAX) {
		rc = artifacts_report_fail(err, display, 0, "file too large for the XML parser (%zu bytes)",
					   len);
		goto out;
	}
	ctxt = xmlNewParserCtxt();
	if (!ctxt) {
		rc = cbl_error_set(err, CBL_ENOMEM, "%s: cannot create an XML parser", display);
		goto out;
	}
	int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
	doc = xmlCtxtReadMemory(ctxt, data, (int)len, NULL, NULL, opts);
	if (!doc || !ctxt->wellFormed) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);
		cbl_buf msg = CBL_BUF_INIT;
		cbl_buf_puts(&msg, e && e->message ? e->message : "not well-formed XML");
		while (msg.len && (msg.ptr[msg.len - 1] == '\n' || msg.ptr[msg.len - 1] == ' '))
			msg.ptr[--msg.len] = '\0';
		rc = artifacts_report_fail(err, display, e ? e->line : 0, "invalid XML: %s",
					   cbl_buf_cstr(&msg));
		cbl_buf_release(&msg);
		goto out;
	}
	x->doc = doc;
	doc = NULL;
out:
	if (doc)
		xmlFreeDoc(doc);
	if (ctxt)
		xmlFreeParserCtxt(ctxt);
	return rc;
}

void artifacts_report_xml_release(artifacts_report_xml *x)
{
	if (x->doc)
		xmlFreeDoc(x->doc);
	x->doc = NULL;
	cbl_strv_release(&x->pool);
}

bool artifacts_report_xml_is(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && (!name || !strcmp((const char *)n->name, name));
}

int artifacts_report_xml_line(const xmlNode *n)
{
	long l = n ? xmlGetLineNo(n) : 0;
	return l > 0 && l < INT_MAX ? (int)l : 0;
}

int artifacts_report_xml_root(artifacts_report_xml *x, const char *const *names, xmlNode **out,
			      cbl_error **err)
{
	xmlNode *root = xmlDocGetRootElement(x->doc);
	for (size_t i = 0; root && names[i]; i++) {
		if (artifacts_report_xml_is(root, names[i])) {
			*out = root;
			return 0;
		}
	}
	cbl_buf want = CBL_BUF_INIT;
	for (size_t i = 0; names[i]; i++)
		cbl_buf_printf(&want, "%s<%s>", i ? " or " : "", names[i]);
	int rc = artifacts_report_fail(err, x->display, artifacts_report_xml_line(root),
				       "expected root element %s, found %s%s%s", cbl_buf_cstr(&want),
				       root ? "<" : "", root ? (const char *)root->name : "none",
				       root ? ">" : "");
	cbl_buf_release(&want);
	return rc;
}

xmlNode *artifacts_report_xml_child(const xmlNode *n, const char *name)
{
	for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (artifacts_report_xml_is(c, name))
			return c;
	return NULL;
}

xmlNode *artifacts_report_xml_next(const xmlNode *n, const char *name)
{
	for (xmlNode *c = n ? n->next : NULL; c; c = c->next)
		if (artifacts_report_xml_is(c, name))
			return c;
	return NULL;
}

static const char *pool_take(artifacts_report_xml *x, char *s)
{
	cbl_strv_push_take(&x->pool, s);
	return s;
}

const char *artifacts_report_xml_attr(artifacts_report_xml *x, const xmlNode *n, const char *name)
{
	if (!n || n->type != XML_ELEMENT_NODE)
		return NULL;
	for (const xmlAttr *a = n->properties; a; a = a->next) {
		if (strcmp((const char *)a->name, name) != 0)
			continue;
		const xmlNode *c = a->children;
		if (!c)
			return "";
		if (c->type == XML_TEXT_NODE && !c->next)
			return c->content ? (const char *)c->content : "";
		/* entity references inside the value: keep the text, drop them */
		cbl_buf b = CBL_BUF_INIT;
		for (; c; c = c->next)
			if (c->type == XML_TEXT_NODE && c->content)
				cbl_buf_puts(&b, (const char *)c->content);
		return pool_take(x, cbl_buf_detach(&b));
	}
	return NULL;
}

static void collect_text(const xmlNode *n, cbl_buf *b, int depth)
{
	for (const xmlNode *c = n->children; c; c = c->next) {
		switch (c->type) {
		case XML_TEXT_NODE:
		case XML_CDATA_SECTION_NODE:
			if (c->content)
				cbl_buf_puts(b, (const char *)c->content);
			break;
		case XML_ELEMENT_NODE:
			if (depth < 64)
				collect_text(c, b, depth + 1);
			break;
		default: /* entity references, comments, PIs: skipped */
			break;
		}
	}
}

const char *artifacts_report_xml_text(artifacts_report_xml *x, const xmlNode *n)
{
	if (!n)
		return NULL;
	cbl_buf b = CBL_BUF_INIT;
	collect_text(n, &b, 0);
	const char *s = cbl_buf_cstr(&b);
	size_t start = 0, end = b.len;
	while (start < end && strchr(" \t\r\n", s[start]))
		start++;
	while (end > start && strchr(" \t\r\n", s[end - 1]))
		end--;
	if (start == end) {
		cbl_buf_release(&b);
		return NULL;
	}
	char *t = cbl_xstrndup(s + start, end - start);
	cbl_buf_release(&b);
	return pool_take(x, t);
}
