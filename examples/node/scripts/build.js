const fs = require('fs');
fs.mkdirSync('build', { recursive: true });
fs.copyFileSync('src/index.js', 'build/index.js');
fs.writeFileSync('build/index.html', '<!doctype html><title>built</title>\n');
console.log('built build/index.js and build/index.html');
