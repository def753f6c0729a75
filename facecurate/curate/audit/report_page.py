"""The report page's style sheet and script, inlined into report.html (it loads nothing, so it works from file://).

The script keeps a decision per flag (accepted / rejected / undecided, remembered in the browser's
localStorage), sorts and filters the cards, enlarges a photo on click, answers the keyboard, and
builds ``overrides.csv`` from the accepted flags in the browser: the same columns, rows and quoting
as ``report_html.overrides_from_flags`` writes, so ``train --overrides`` reads it as it is.
"""
from __future__ import annotations

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f3f4f6;color:#1f2328}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #d0d7de;padding:8px 20px 6px;z-index:5;box-shadow:0 1px 3px rgba(0,0,0,.06)}
h1{font-size:18px;margin:0 6px 0 0;display:inline}
.sum{color:#57606a;font-size:13px;display:inline}
.bar{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;margin-top:6px}
.bar .grp{display:flex;gap:4px;align-items:center;flex-wrap:wrap}
.bar label{color:#57606a;font-size:12px}
button,select,input{font:inherit;font-size:13px}
.kindbtn{border:1px solid #c7ccd1;background:#f6f8fa;border-radius:14px;padding:2px 10px;cursor:pointer}
.kindbtn.on{background:#0969da;color:#fff;border-color:#0969da}
select{width:auto;max-width:160px}
select,input[type=search]{padding:2px 6px;border:1px solid #c7ccd1;border-radius:6px;background:#fff}
input[type=search]{width:190px}
.primary{background:#1f883d;color:#fff;border:1px solid #1a7f37;border-radius:6px;padding:3px 12px;cursor:pointer;font-weight:600}
.plain{background:#f6f8fa;border:1px solid #c7ccd1;border-radius:6px;padding:3px 10px;cursor:pointer}
.tally{font-size:13px;color:#57606a}
.tally b{color:#1f2328}
.quality{margin:14px 20px 0;display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:14px}
.panel{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 14px}
.panel h2{font-size:14px;margin:0 0 6px}
.off{background:#fff4e5;border:1px solid #f0b45b;border-radius:8px;padding:8px 14px;margin:14px 20px 0;color:#5c3b00}
.off p{margin:2px 0}
table.q{border-collapse:collapse;width:100%;font-size:13px}
table.q td,table.q th{padding:3px 8px;border-top:1px solid #eaeef2;text-align:left;vertical-align:middle}
table.q th{color:#57606a;font-weight:500}
.pill{display:inline-block;white-space:nowrap;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600}
.pill.on,.pill.high{background:#dafbe1;color:#116329}.pill.off{background:#ffebe9;color:#a40e26}.pill.low{background:#fff8c5;color:#7d4e00}
.rel{display:flex;gap:10px;flex-wrap:wrap}
.rel figure{margin:0;font-size:11px;color:#57606a;text-align:center}
main{padding:14px 20px;display:grid;grid-template-columns:1fr;gap:12px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 14px;outline:none}
.card.focus{border-color:#0969da;box-shadow:0 0 0 2px rgba(9,105,218,.25)}
.card h3{font-size:15px;margin:0 0 6px;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.card h3 .who{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:14px}
.card h3 .acts{margin-left:auto;display:flex;gap:6px}
.score{font-weight:700;color:#fff;background:#cf222e;border-radius:10px;padding:0 8px;font-size:12px}
.given{color:#57606a;font-weight:400;font-size:13px}
.kind{font-size:11px;border-radius:8px;padding:1px 7px;background:#eef;color:#335;font-weight:500;white-space:nowrap}
.k-gender{background:#fde2e4}.k-age{background:#fff1c1}.k-mask_swap{background:#d7f0ff}.k-mask_photo{background:#e0f5e4}.k-structure{background:#eadcf8}.k-near_duplicate{background:#e8e8e8}
.body{display:grid;grid-template-columns:auto minmax(0,1fr);gap:18px;align-items:start}
@media (max-width:1250px){.body{grid-template-columns:1fr}}
.photos{display:flex;gap:5px;flex-wrap:wrap;max-width:640px}
figure.ph{margin:0;text-align:center;font-size:11px;color:#57606a;width:86px;overflow-wrap:anywhere}
figure.ph img,figure.ph .none{display:block;height:112px;width:84px;object-fit:cover;border:3px solid transparent;border-radius:4px;margin:0 auto;background:#d0d7de;cursor:zoom-in}
figure.ph.hit img,figure.ph.hit .none{border-color:#e16f24}
.ph.match img{border-color:#0969da;border-style:dashed}
figure.ph .sug{color:#cf222e;font-weight:600}
table.flags{border-collapse:collapse;width:100%;font-size:13px}
table.flags td,table.flags th{border-top:1px solid #eaeef2;padding:4px 6px;text-align:left;vertical-align:top}
table.flags th{color:#57606a;font-weight:500;white-space:nowrap}
tr.flag.focus{background:#ddf4ff}
tr.flag[data-state=accepted]{background:#dafbe1}
tr.flag[data-state=rejected]{background:#f6f8fa;color:#8c959f}
tr.flag[data-state=rejected] .fix{text-decoration:line-through}
.arrow{color:#cf222e;font-weight:600;white-space:nowrap}
.why{color:#424a53;font-size:12px}
.dec{white-space:nowrap}
.dec button{border:1px solid #c7ccd1;background:#fff;border-radius:6px;padding:1px 8px;cursor:pointer;margin-right:3px}
tr.flag[data-state=accepted] .acc{background:#1f883d;color:#fff;border-color:#1a7f37}
tr.flag[data-state=rejected] .rej{background:#cf222e;color:#fff;border-color:#a40e26}
.nofix{color:#8c959f;font-size:12px}
#lightbox{position:fixed;inset:0;background:rgba(15,20,25,.82);display:none;align-items:center;justify-content:center;z-index:10;cursor:zoom-out;flex-direction:column}
#lightbox.open{display:flex}
#lightbox img{max-height:82vh;max-width:90vw;min-height:50vh;image-rendering:auto;border-radius:6px;background:#000}
#lightbox div{color:#fff;margin-top:8px;font-size:14px}
#help{position:fixed;right:20px;top:90px;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 16px;box-shadow:0 4px 14px rgba(0,0,0,.15);display:none;z-index:8;font-size:13px}
#help.open{display:block}
#help kbd,footer kbd{border:1px solid #c7ccd1;border-bottom-width:2px;border-radius:4px;padding:0 5px;font-size:12px;background:#f6f8fa}
footer{color:#57606a;font-size:12px;padding:0 20px 24px}
"""

SCRIPT = r"""
(function(){
  var FLAGS=JSON.parse(document.getElementById('flag-data').textContent);
  var byId={}; FLAGS.forEach(function(f){byId[f.id]=f;});
  var KEY='facecurate-report:'+document.body.dataset.report;
  var state={};
  try{state=JSON.parse(localStorage.getItem(KEY)||'{}')||{};}catch(e){state={};}
  var main=document.querySelector('main');
  var cards=[].slice.call(document.querySelectorAll('.card'));
  var rows=function(){return [].slice.call(document.querySelectorAll('.card:not([hidden]) tr.flag'));};
  var focusRow=null, kind='all';
  function save(){try{localStorage.setItem(KEY,JSON.stringify(state));}catch(e){}}
  function paint(tr){tr.dataset.state=state[tr.dataset.flag]||'';}
  function tally(){
    var a=0,r=0; FLAGS.forEach(function(f){if(state[f.id]==='accepted')a++; else if(state[f.id]==='rejected')r++;});
    document.getElementById('n-acc').textContent=a; document.getElementById('n-rej').textContent=r;
    document.getElementById('n-und').textContent=FLAGS.length-a-r;
    document.getElementById('n-fix').textContent=fixes().length;
  }
  function decide(ids,v){ids.forEach(function(id){if(v&&state[id]!==v)state[id]=v; else delete state[id];});
    document.querySelectorAll('tr.flag').forEach(paint); save(); tally(); apply(false);}
  function setAll(ids,v){ids.forEach(function(id){if(v)state[id]=v; else delete state[id];});
    document.querySelectorAll('tr.flag').forEach(paint); save(); tally(); apply(false);}
  function cardIds(card){return [].map.call(card.querySelectorAll('tr.flag'),function(t){return t.dataset.flag;});}
  function focus(tr,scroll){
    if(focusRow){focusRow.classList.remove('focus'); focusRow.closest('.card').classList.remove('focus');}
    focusRow=tr; if(!tr)return; tr.classList.add('focus'); tr.closest('.card').classList.add('focus');
    if(scroll!==false)tr.scrollIntoView({block:'center'});
  }
  function apply(reorder){
    var q=document.getElementById('search').value.toLowerCase();
    var conf=document.getElementById('conf').value, st=document.getElementById('state').value, shown=0;
    cards.forEach(function(c){
      var ok=(kind==='all'||c.dataset.kinds.split(' ').indexOf(kind)>=0)&&(!q||c.dataset.person.toLowerCase().indexOf(q)>=0);
      if(ok&&conf!=='all')ok=c.dataset.conf.split(' ').indexOf(conf)>=0;
      if(ok&&st!=='all')ok=cardIds(c).some(function(id){return (state[id]||'undecided')===st;});
      c.hidden=!ok; if(ok)shown++;
    });
    document.getElementById('shown').textContent=shown;
    if(reorder!==false)sort();
  }
  function sort(){
    var by=document.getElementById('sort').value;
    var key={score:function(c){return [-parseFloat(c.dataset.score),c.dataset.person];},
             person:function(c){return [c.dataset.person,0];},
             kind:function(c){return [parseInt(c.dataset.kindorder,10),-parseFloat(c.dataset.score)];}}[by];
    cards.sort(function(a,b){var x=key(a),y=key(b);return x[0]<y[0]?-1:x[0]>y[0]?1:x[1]<y[1]?-1:x[1]>y[1]?1:0;});
    cards.forEach(function(c){main.appendChild(c);});
  }
  function csvField(v){v=String(v);return /[",\n\r]/.test(v)?'"'+v.replace(/"/g,'""')+'"':v;}
  function fixes(){
    var seen={},out=[];
    FLAGS.forEach(function(f){
      if(state[f.id]!=='accepted'||f.field===''||f.value===null)return;
      var k=f.scope+'\u0000'+f.key+'\u0000'+f.field; if(seen[k])return; seen[k]=1; out.push(f);
    });
    return out;
  }
  function download(){
    var lines=['scope,key,field,value,reason'];
    fixes().forEach(function(f){lines.push([f.scope,f.key,f.field,f.value,f.reason].map(csvField).join(','));});
    var blob=new Blob([lines.join('\n')+'\n'],{type:'text/csv'});
    var a=document.createElement('a'); a.href=URL.createObjectURL(blob); a.download='overrides.csv';
    document.body.appendChild(a); a.click(); setTimeout(function(){URL.revokeObjectURL(a.href); a.remove();},1000);
  }
  var lb=document.getElementById('lightbox');
  function enlarge(img){lb.querySelector('img').src=img.src; lb.querySelector('div').textContent=img.title; lb.classList.add('open');}
  lb.addEventListener('click',function(){lb.classList.remove('open');});
  document.querySelectorAll('figure.ph img').forEach(function(img){img.addEventListener('click',function(){enlarge(img);});});
  document.querySelectorAll('tr.flag').forEach(function(tr){
    paint(tr);
    tr.querySelector('.acc').addEventListener('click',function(e){e.stopPropagation(); focus(tr,false); decide([tr.dataset.flag],'accepted');});
    tr.querySelector('.rej').addEventListener('click',function(e){e.stopPropagation(); focus(tr,false); decide([tr.dataset.flag],'rejected');});
    tr.addEventListener('click',function(){focus(tr,false);});
  });
  cards.forEach(function(c){
    c.querySelector('.pacc').addEventListener('click',function(){setAll(cardIds(c),'accepted');});
    c.querySelector('.prej').addEventListener('click',function(){setAll(cardIds(c),'rejected');});
  });
  document.querySelectorAll('.kindbtn').forEach(function(b){b.addEventListener('click',function(){
    document.querySelectorAll('.kindbtn').forEach(function(x){x.classList.remove('on');}); b.classList.add('on'); kind=b.dataset.kind; apply();});});
  ['search','conf','state','sort'].forEach(function(id){document.getElementById(id).addEventListener(id==='search'?'input':'change',function(){apply();});});
  document.getElementById('download').addEventListener('click',download);
  document.getElementById('accept-high').addEventListener('click',function(){
    setAll(FLAGS.filter(function(f){return f.confidence==='high'&&f.field!==''&&!state[f.id];}).map(function(f){return f.id;}),'accepted');});
  document.getElementById('clear').addEventListener('click',function(){if(confirm('Forget every decision on this page?'))setAll(FLAGS.map(function(f){return f.id;}),'');});
  document.getElementById('helpbtn').addEventListener('click',function(){document.getElementById('help').classList.toggle('open');});
  function step(d){var r=rows(); if(!r.length)return; var i=r.indexOf(focusRow); focus(r[Math.max(0,Math.min(r.length-1,i<0?0:i+d))]);}
  function stepCard(d){var vis=cards.filter(function(c){return !c.hidden;}); if(!vis.length)return;
    var i=focusRow?vis.indexOf(focusRow.closest('.card')):-1; var c=vis[Math.max(0,Math.min(vis.length-1,i<0?0:i+d))];
    focus(c.querySelector('tr.flag'));}
  document.addEventListener('keydown',function(e){
    if(e.target.tagName==='INPUT'||e.target.tagName==='SELECT'){if(e.key==='Escape')e.target.blur();return;}
    if(e.ctrlKey||e.metaKey||e.altKey)return;
    var k=e.key, card=focusRow&&focusRow.closest('.card');
    if(k==='Escape'){lb.classList.remove('open'); document.getElementById('help').classList.remove('open'); return;}
    if(k==='j'||k==='ArrowDown'){step(1);} else if(k==='k'||k==='ArrowUp'){step(-1);}
    else if(k==='n'){stepCard(1);} else if(k==='p'){stepCard(-1);}
    else if(k==='a'&&focusRow){decide([focusRow.dataset.flag],'accepted'); step(1);}
    else if(k==='r'&&focusRow){decide([focusRow.dataset.flag],'rejected'); step(1);}
    else if(k==='u'&&focusRow){setAll([focusRow.dataset.flag],'');}
    else if(k==='A'&&card){setAll(cardIds(card),'accepted'); stepCard(1);}
    else if(k==='R'&&card){setAll(cardIds(card),'rejected'); stepCard(1);}
    else if((k==='o'||k==='Enter')&&card){var img=card.querySelector('figure.hit img')||card.querySelector('figure.ph img'); if(img)enlarge(img);}
    else if(k==='/'){document.getElementById('search').focus();}
    else if(k==='d'){download();}
    else if(k==='?'){document.getElementById('help').classList.toggle('open');}
    else return;
    e.preventDefault();
  });
  tally(); apply();
})();
"""
