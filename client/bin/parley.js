#!/usr/bin/env node
// The `parley` command (docs/CLIENT.md). Its source is TypeScript, as the SDK's is: run through tsx, as `npm start`
// runs the server, so there is nothing to build after `npm install`.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/main.ts')
