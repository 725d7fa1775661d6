package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Trickle feeds a Discipline a slow stream of changes, so a newcomer running
// `make run` sees corrections and new decisions flow through syncd. Agencies,
// authorities and their codes are taken from the items the source already
// holds, so new records name the same agencies with the same 统一社会信用代码.
// A Trickle is not safe for concurrent use; the Discipline it feeds is.
type Trickle struct {
	d           *Discipline
	rng         *rand.Rand
	now         func() time.Time
	steps       int
	orgs        []orgRef
	employers   []orgRef
	authorities []orgRef
}

type orgRef struct{ name, typ, code, region string }

// NewTrickle returns a Trickle over d whose choices follow seed.
func NewTrickle(d *Discipline, seed int64) *Trickle {
	t := &Trickle{d: d, rng: rand.New(rand.NewPCG(uint64(seed), 0x211100)), now: time.Now}
	add := func(list *[]orgRef, r orgRef) {
		if r.name == "" {
			return
		}
		for _, x := range *list {
			if x.name == r.name {
				return
			}
		}
		*list = append(*list, r)
	}
	for _, it := range d.snapshot() {
		region, _ := it["region"].(string)
		if p, ok := it["party"].(map[string]any); ok {
			name, _ := p["name"].(string)
			typ, _ := p["type"].(string)
			code, _ := p["credit_code"].(string)
			if validUSCC(code) && (typ == "机关" || typ == "参公事业单位") {
				add(&t.orgs, orgRef{name: name, typ: typ, code: code, region: region})
			}
		}
		if emp, ok := it["employer"].(string); ok {
			add(&t.employers, orgRef{name: emp, region: region})
		}
		name, _ := it["authority"].(string)
		code, _ := it["authority_code"].(string)
		if validUSCC(code) {
			add(&t.authorities, orgRef{name: name, code: code, region: "211100"})
		}
	}
	// An empty source still trickles: fall back to one agency and one authority.
	if len(t.orgs) == 0 {
		t.orgs = []orgRef{{name: "盘锦市生态环境局", typ: "机关", code: agencyCode("11", "211100", "00112233"), region: "211100"}}
	}
	if len(t.employers) == 0 {
		t.employers = []orgRef{{name: t.orgs[0].name, region: t.orgs[0].region}}
	}
	if len(t.authorities) == 0 {
		t.authorities = []orgRef{{name: "中共盘锦市纪律检查委员会", code: agencyCode("11", "211100", "00445566"), region: "211100"}}
	}
	return t
}

// agencyCode builds a valid 统一社会信用代码 from the registering-authority and
// kind digits, the region and the first eight characters of the embedded
// 组织机构代码.
func agencyCode(kind, region, org8 string) string {
	oc, _ := orgCodeCheck(org8)
	body := kind + region + org8 + string(oc)
	c, _ := usccCheck(body)
	return body + string(c)
}

// Step applies one change to the source: about half the time a correction of
// an item it holds (same id, amended facts), otherwise a new decision. It
// returns the id touched.
func (t *Trickle) Step() (id string, correction bool) {
	t.steps++
	if t.d.Len() > 0 && t.rng.IntN(2) == 0 {
		ids := t.d.ids()
		it := t.d.get(ids[t.rng.IntN(len(ids))])
		if it != nil {
			facts, _ := it["facts"].(string)
			facts, _, _ = strings.Cut(facts, "【更正")
			it["facts"] = fmt.Sprintf("%s【更正%d】经复核，对上述事实补充认定，处理结论不变。", facts, t.steps)
			t.d.Upsert(it)
			return it["id"].(string), true
		}
	}
	it := t.newDecision()
	t.d.Upsert(it)
	return it["id"].(string), false
}

var (
	trickleSurnames = []string{"王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "孙", "马"}
	tricklePersonal = []struct{ violation, facts, basis, sanction string }{
		{"违反中央八项规定精神，违规收受礼品礼金", "%s收受管理服务对象所送购物卡，价值人民币%d元。", "《中国共产党纪律处分条例》第九十七条", "警告"},
		{"违规公款吃喝", "%s以公务接待名义组织公款吃喝，违规报销餐费人民币%d元。", "《中国共产党纪律处分条例》第一百零五条", "记过"},
		{"失职失责", "%s在监管工作中未认真履行职责，致使相关问题未被及时发现，涉及资金人民币%d元。", "《中华人民共和国公职人员政务处分法》第三十九条", "记大过"},
		{"违规兼职取酬", "%s未经批准在企业兼职并领取报酬人民币%d元。", "《中华人民共和国公职人员政务处分法》第三十六条", "降级"},
	}
	trickleOrg = []struct{ violation, facts, basis, sanction string }{
		{"拖欠民营企业账款", "%s拖欠民营企业账款人民币%d元，逾期未清偿。", "《保障中小企业款项支付条例》第十五条、《中国共产党问责条例》第七条", "通报"},
		{"招商引资承诺未兑现", "%s未兑现招商引资协议约定的奖励资金人民币%d元，损害政府公信力。", "《中国共产党问责条例》第七条", "责令检查"},
		{"未履行生效法律文书", "%s未履行人民法院生效判决确定的给付义务，涉及金额人民币%d元。", "《中国共产党问责条例》第七条、第八条", "通报"},
	}
)

// newDecision makes a plausible, clean decision dated in the last week.
func (t *Trickle) newDecision() map[string]any {
	now := t.now().In(beijing)
	auth := t.authorities[t.rng.IntN(len(t.authorities))]
	amount := 1000 * (1 + t.rng.IntN(50))
	it := map[string]any{
		"authority":      auth.name,
		"authority_code": auth.code,
		"status":         "有效",
		"decision_date":  formatDecisionDate(now.AddDate(0, 0, -t.rng.IntN(7)), t.steps),
	}
	prefix := "盘纪"
	switch {
	case strings.Contains(auth.name, "监察"):
		prefix = "盘监"
	case strings.Contains(auth.name, "人力资源"):
		prefix = "盘人社"
	}
	if t.rng.IntN(2) == 0 {
		e := t.employers[t.rng.IntN(len(t.employers))]
		name := trickleSurnames[t.rng.IntN(len(trickleSurnames))] + "某" + strings.Repeat("某", t.rng.IntN(2))
		tpl := tricklePersonal[t.rng.IntN(len(tricklePersonal))]
		it["record_type"] = "纪律处分"
		it["case_no"] = fmt.Sprintf("%s处〔%d〕%d号", prefix, now.Year(), 100+t.rng.IntN(900))
		it["party"] = map[string]any{"name": name, "type": "公务员", "id_no": t.idNo(e.region)}
		it["employer"] = e.name
		it["region"] = e.region
		it["violation"], it["basis"], it["sanction"] = tpl.violation, tpl.basis, tpl.sanction
		it["facts"] = fmt.Sprintf(tpl.facts, name, amount)
		if tpl.sanction == "警告" {
			it["fine_yuan"] = amount
		}
	} else {
		o := t.orgs[t.rng.IntN(len(t.orgs))]
		tpl := trickleOrg[t.rng.IntN(len(trickleOrg))]
		it["record_type"] = "问责处理"
		it["case_no"] = fmt.Sprintf("%s问责〔%d〕%d号", prefix, now.Year(), 100+t.rng.IntN(900))
		it["party"] = map[string]any{"name": o.name, "type": o.typ, "credit_code": o.code}
		it["region"] = o.region
		it["violation"], it["basis"], it["sanction"] = tpl.violation, tpl.basis, tpl.sanction
		it["facts"] = fmt.Sprintf(tpl.facts, o.name, amount)
	}
	for {
		id := fmt.Sprintf("jc-%d-%05d", now.Year(), 10000+t.rng.IntN(90000))
		if t.d.get(id) == nil {
			it["id"] = id
			return it
		}
	}
}

// idNo returns a synthetic 公民身份号码 with a valid check character, born
// 1965–1995 in a district of Panjin.
func (t *Trickle) idNo(region string) string {
	if region == "" || strings.HasSuffix(region, "00") {
		region = []string{"211102", "211103", "211104", "211122"}[t.rng.IntN(4)]
	}
	birth := time.Date(1965+t.rng.IntN(31), time.January, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, t.rng.IntN(365))
	body := fmt.Sprintf("%s%s%03d", region, birth.Format("20060102"), 1+t.rng.IntN(998))
	c, _ := idCheck(body)
	return body + string(c)
}

// formatDecisionDate writes d in one of the four forms the source mixes.
func formatDecisionDate(d time.Time, n int) string {
	switch n % 4 {
	case 0:
		return d.Format(time.DateOnly)
	case 1:
		return d.Format("20060102")
	case 2:
		return fmt.Sprintf("%d年%d月%d日", d.Year(), d.Month(), d.Day())
	default:
		return fmt.Sprintf("%d/%d/%d", d.Year(), d.Month(), d.Day())
	}
}

// snapshot decodes every held item, in (updated_at, id) order.
func (d *Discipline) snapshot() []map[string]any {
	d.mu.RLock()
	raws := make([]json.RawMessage, len(d.entries))
	for i, e := range d.entries {
		raws[i] = e.raw
	}
	d.mu.RUnlock()
	out := make([]map[string]any, 0, len(raws))
	for _, r := range raws {
		if it := decodeItem(r); it != nil {
			out = append(out, it)
		}
	}
	return out
}

// ids returns the held ids, sorted.
func (d *Discipline) ids() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]string, 0, len(d.byID))
	for id := range d.byID {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// get returns a decoded copy of the item with id, or nil.
func (d *Discipline) get(id string) map[string]any {
	d.mu.RLock()
	e, ok := d.byID[id]
	d.mu.RUnlock()
	if !ok {
		return nil
	}
	return decodeItem(e.raw)
}

func decodeItem(raw json.RawMessage) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var it map[string]any
	if err := dec.Decode(&it); err != nil {
		return nil
	}
	return it
}
