import { writeFile } from 'node:fs/promises'
import { errorsMarkdown } from './errors-doc.ts'
import { openapiYaml } from './openapi.ts'

await writeFile(new URL('../openapi.yaml', import.meta.url), await openapiYaml())
await writeFile(new URL('../docs/ERRORS.md', import.meta.url), errorsMarkdown())
console.log('wrote openapi.yaml and docs/ERRORS.md')
