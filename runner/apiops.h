/* runner/apiops.h - the API operations that need more than the store:
 *
 *   CodeBuild_20161006.InvalidateProjectCache   the project's entries of the
 *       local build cache (cache/, the default store <home>/cache) are
 *       dropped and the objects no other entry uses removed; the source
 *       cache (LOCAL_SOURCE_CACHE, shared by repository URL) is left.  An
 *       unknown project: ResourceNotFoundException.  Answers {}.
 *   CodeBuild_20161006.ListCuratedEnvironmentImages   the curated images of
 *       the catalog (images/catalog.json) in the service's shape: platforms
 *       (UBUNTU, AMAZON_LINUX) -> languages -> images {name, description,
 *       versions}.  A multi-runtime image is listed under BASE and under each
 *       language of its runtimes the model names (JAVA, PYTHON, NODE_JS,
 *       RUBY, GOLANG, DOCKER, DOTNET, PHP); versions holds the image's own
 *       name (the catalog keeps no dated versions).
 *
 * Like the launcher's, these run in the faces' dispatchers (cli/, `serve`),
 * after store_api_validate.  Errors as store_api_dispatch's. */
#ifndef RUNNER_APIOPS_H
#define RUNNER_APIOPS_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"

bool runner_api_known(const char *target);
int runner_api_dispatch(const char *home, const char *target, json_t *request, json_t **out,
			cbl_error **err);

#endif
