// A request field with a default is optional to the client: the server fills it in (Ajv's useDefaults) before
// the handler runs. The route schemas list it as required, so that handlers are typed with the value always
// there; this turns the document round to the client's side, where generators and Swagger UI read it.

type Json = Record<string, unknown>
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)

/** Drops from `required` every property that has a default, in a request body schema and those nested in it. */
function relax(schema: unknown): void {
  if (!isObject(schema)) return
  const properties = isObject(schema.properties) ? schema.properties : {}
  if (Array.isArray(schema.required)) {
    schema.required = schema.required.filter((name) => !(isObject(properties[name]) && 'default' in properties[name]))
    if ((schema.required as unknown[]).length === 0) delete schema.required
  }
  for (const child of [...Object.values(properties), schema.items, ...['anyOf', 'oneOf', 'allOf'].flatMap((k) => (Array.isArray(schema[k]) ? schema[k] : []))]) relax(child)
}

/** The OpenAPI document with every defaulted query parameter and request body field optional. */
export function optionalDefaults<T extends { paths?: unknown }>(document: T): T {
  for (const operations of Object.values(isObject(document.paths) ? document.paths : {})) {
    for (const operation of Object.values(isObject(operations) ? operations : {})) {
      if (!isObject(operation)) continue
      for (const parameter of Array.isArray(operation.parameters) ? operation.parameters : []) {
        if (isObject(parameter) && isObject(parameter.schema) && 'default' in parameter.schema) delete parameter.required
      }
      const content = isObject(operation.requestBody) && isObject(operation.requestBody.content) ? operation.requestBody.content : {}
      for (const media of Object.values(content)) if (isObject(media)) relax(media.schema)
    }
  }
  return document
}
